import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../../../runtime/errors.ts';
import {
  BPF_MAX_INSTRUCTIONS,
  clearCompiledProfiles,
  compileProfile,
  loadAndCompile,
  SOCK_FILTER_BYTES,
} from '../../../../runtime/seccomp/compile.ts';
import { LAUNCHER_SYSCALLS, validateProfile } from '../../../../runtime/seccomp/profile.ts';

const DEFAULT_PROFILE_PATH = fileURLToPath(new URL('../../../../profiles/seccomp/default.json', import.meta.url));
let scratchDir = '';

before(() => {
  scratchDir = mkdtempSync(join(tmpdir(), 'brig-seccomp-compile-'));
});

after(() => {
  rmSync(scratchDir, { recursive: true, force: true });
});

function writeProfile(fileName: string, profile: unknown): string {
  const path = join(scratchDir, fileName);
  writeFileSync(path, typeof profile === 'string' ? profile : JSON.stringify(profile));
  return path;
}

function assertConfigError(run: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const fragment of fragments) {
      assert.ok(error.message.includes(fragment), `message lacks ${JSON.stringify(fragment)}: ${error.message}`);
    }
    return true;
  });
}

test('the default profile compiles to whole sock_filter instructions within the kernel limit', () => {
  const compiled = loadAndCompile(DEFAULT_PROFILE_PATH);
  assert.equal(compiled.name, 'default');
  assert.equal(compiled.sha256, createHash('sha256').update(readFileSync(DEFAULT_PROFILE_PATH)).digest('hex'));
  assert.ok(compiled.bpf.length > 0);
  assert.equal(compiled.bpf.length % SOCK_FILTER_BYTES, 0);
  assert.ok(compiled.bpf.length / SOCK_FILTER_BYTES <= BPF_MAX_INSTRUCTIONS);
});

test('a profile is compiled once per content: same path, or another path with the same bytes', () => {
  clearCompiledProfiles();
  const first = loadAndCompile(DEFAULT_PROFILE_PATH);
  const again = loadAndCompile(DEFAULT_PROFILE_PATH);
  assert.equal(again.bpf, first.bpf, 'the second load must reuse the compiled buffer');

  const copyPath = join(scratchDir, 'renamed.json');
  copyFileSync(DEFAULT_PROFILE_PATH, copyPath);
  const copy = loadAndCompile(copyPath);
  assert.equal(copy.bpf, first.bpf);
  assert.equal(copy.name, 'renamed');

  clearCompiledProfiles();
  const recompiled = loadAndCompile(DEFAULT_PROFILE_PATH);
  assert.notEqual(recompiled.bpf, first.bpf, 'clearing the cache compiles again');
  assert.deepEqual(recompiled.bpf, first.bpf, 'compiling is deterministic');
});

test('different content is compiled separately', () => {
  const allowAll = loadAndCompile(writeProfile('allow-all.json', { defaultAction: 'SCMP_ACT_ALLOW' }));
  const killAll = loadAndCompile(
    writeProfile('kill-all.json', {
      defaultAction: 'SCMP_ACT_KILL_PROCESS',
      syscalls: [{ names: [...LAUNCHER_SYSCALLS], action: 'SCMP_ACT_ALLOW' }],
    }),
  );
  assert.notEqual(allowAll.sha256, killAll.sha256);
  assert.notDeepEqual(allowAll.bpf, killAll.bpf);
});

test('a missing file is seccomp_profile_unreadable naming the path', () => {
  const path = join(scratchDir, 'does-not-exist.json');
  assertConfigError(() => loadAndCompile(path), 'seccomp_profile_unreadable', path, 'ENOENT');
});

test('malformed json in a file is seccomp_profile_invalid_json naming the file', () => {
  const path = writeProfile('broken.json', '{"defaultAction": "SCMP_ACT_ALLOW",');
  assertConfigError(() => loadAndCompile(path), 'seccomp_profile_invalid_json', path);
});

test('a bad action or op in a file names the file and the json path', () => {
  const badAction = writeProfile('bad-action.json', {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_PERMIT' }],
  });
  assertConfigError(() => loadAndCompile(badAction), 'seccomp_unknown_action', badAction, '$.syscalls[0].action');
  const badOp = writeProfile('bad-op.json', {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] }],
  });
  assertConfigError(() => loadAndCompile(badOp), 'seccomp_unknown_operator', badOp, '$.syscalls[0].args[0].op');
});

test('an unknown syscall is seccomp_unknown_syscall naming the syscall and the file, never skipped', () => {
  const path = writeProfile('typo.json', {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: [...LAUNCHER_SYSCALLS, 'wirte'], action: 'SCMP_ACT_ALLOW' }],
  });
  assert.throws(
    () => loadAndCompile(path),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.code === 'seccomp_unknown_syscall' &&
      error.message.includes('"wirte"') &&
      error.message.includes(path) &&
      error.field === `$.syscalls[0].names[${LAUNCHER_SYSCALLS.length}]`,
  );
});

test('a profile that does not let the launcher reach execve is refused before any sandbox starts, naming the call', () => {
  // Denied by default and not allowed by a rule.
  const byDefault = writeProfile('no-chdir.json', {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['read', 'execve'], action: 'SCMP_ACT_ALLOW' }],
  });
  assertConfigError(() => loadAndCompile(byDefault), 'seccomp_launcher_syscall_denied', byDefault, '"chdir"', '$.defaultAction');
  // Denied by a rule in an otherwise allowing profile.
  const byRule = writeProfile('kill-read.json', {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILL_PROCESS' }],
  });
  assertConfigError(() => loadAndCompile(byRule), 'seccomp_launcher_syscall_denied', '"read"', '$.syscalls[0].names[0]');
  // Allowed only for some arguments: the launcher's own call might not match.
  const conditional = writeProfile('read-fd0.json', {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] }],
  });
  assertConfigError(() => loadAndCompile(conditional), 'seccomp_launcher_syscall_denied', '"read"');
  // Logged calls go through.
  const logged = writeProfile('log-execve.json', {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['execve'], action: 'SCMP_ACT_LOG' }],
  });
  assert.ok(loadAndCompile(logged).bpf.length > 0);
});

test('a syscall that exists only on a listed non-native arch compiles', () => {
  // socketcall is i386's socket multiplexer: x86_64 and aarch64 only have a pseudo-number for it.
  const profile = validateProfile(
    {
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86'],
      syscalls: [{ names: ['socketcall', 'read'], action: 'SCMP_ACT_ALLOW' }],
    },
    'inline:socketcall',
  );
  assert.ok(compileProfile(profile).length > 0);
});

const X86_64_ONLY = { skip: process.arch !== 'x64' && 'written for x86_64 hosts' };

test('a syscall that exists only on an arch missing from the filter is an error', X86_64_ONLY, () => {
  const onlyX86 = {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['arm_fadvise64_64'], action: 'SCMP_ACT_ALLOW' }],
  };
  assertConfigError(
    () => compileProfile(validateProfile(onlyX86, 'inline:arm-only')),
    'seccomp_unknown_syscall',
    '"arm_fadvise64_64"',
    'on x86_64;',
  );
  const withArm = { ...onlyX86, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_ARM'] };
  assert.ok(compileProfile(validateProfile(withArm, 'inline:arm-listed')).length > 0);
});

test('listed foreign arches only widen the accepted names: the filter stays native-only', X86_64_ONLY, () => {
  const nativeOnly = validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'] }, 'inline:native');
  const withForeign = validateProfile(
    { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_S390X', 'SCMP_ARCH_X86'] },
    'inline:foreign',
  );
  assert.deepEqual(compileProfile(withForeign), compileProfile(nativeOnly));
});

test('two rules with the same arguments and different actions are seccomp_rule_rejected', () => {
  const sameArgs = [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }];
  const profile = validateProfile(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', args: sameArgs },
        { names: ['socket'], action: 'SCMP_ACT_KILL_PROCESS', args: sameArgs },
      ],
    },
    'inline:conflict',
  );
  assertConfigError(() => compileProfile(profile), 'seccomp_rule_rejected', '$.syscalls[1]', '"socket"', 'EEXIST');
});

test('a rule that repeats the default action is accepted (and adds nothing)', () => {
  const withoutDeny = validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [] }, 'inline:plain');
  const withDeny = validateProfile(
    { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] },
    'inline:explicit-deny',
  );
  assert.deepEqual(compileProfile(withDeny), compileProfile(withoutDeny));
});

test('the largest errno a profile accepts for SCMP_ACT_ERRNO is one libseccomp compiles', () => {
  const profile = validateProfile(
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO', errnoRet: 4094 }] },
    'inline:largest-errno',
  );
  assert.ok(compileProfile(profile).length > 0);
  assertConfigError(
    () => compileProfile(validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 4095 }, 'inline:max-errno')),
    'seccomp_profile_invalid',
    '$.defaultErrnoRet',
  );
});
