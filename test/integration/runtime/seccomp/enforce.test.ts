/**
 * The compiled filter, loaded by a real child exactly as the launcher will
 * (no_new_privs, seccomp(SECCOMP_SET_MODE_FILTER) from bytes, then the
 * program): escape attempts must fail and ordinary programs must still run.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileProfile, loadAndCompile } from '../../../../runtime/seccomp/compile.ts';
import { validateProfile } from '../../../../runtime/seccomp/profile.ts';

const PROBE_SOURCE = fileURLToPath(new URL('../../../probes/seccomp-check.c', import.meta.url));
const DEFAULT_PROFILE = fileURLToPath(new URL('../../../../profiles/seccomp/default.json', import.meta.url));
const PROBE_TIMEOUT_MS = 30_000;
const { EPERM, ENOSYS, ENODATA, EAFNOSUPPORT } = osConstants.errno;
const { SIGSYS } = osConstants.signals;

let workDir = '';
let probePath = '';
let skipReason: string | undefined;

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'brig-seccomp-enforce-'));
  probePath = join(workDir, 'seccomp-check');
  const build = spawnSync('cc', ['-Wall', '-Wextra', '-Werror', '-O1', '-o', probePath, PROBE_SOURCE], {
    encoding: 'utf8',
  });
  if ((build.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    skipReason = 'cc is not installed: cannot build test/probes/seccomp-check.c';
    return;
  }
  assert.equal(build.status, 0, `building the probe failed:\n${build.stderr}`);
});

after(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function writeFilter(fileName: string, bpf: Buffer): string {
  const path = join(workDir, fileName);
  writeFileSync(path, bpf);
  return path;
}

/** Runs every probe under the filter; returns probe name → "ok" | errno number | "signal:N". */
function runProbes(filterPath: string): Map<string, string> {
  const run = spawnSync(probePath, [filterPath], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  assert.equal(run.status, 0, `probe failed: ${run.stderr}`);
  return new Map(
    run.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
}

/** Runs a program under the filter, as the launcher will. */
function execUnder(filterPath: string, argv: string[], cwd = workDir): { status: number | null; output: string } {
  const options = { cwd, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS } as const;
  const run = spawnSync(probePath, [filterPath, '--exec', ...argv], options);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).error === undefined;
}

function skipped(t: TestContext): boolean {
  if (skipReason !== undefined) t.skip(skipReason);
  return skipReason !== undefined;
}

const MUST_FAIL_WITH_EPERM = [
  'clone_newuser',
  'unshare_newuser',
  'unshare_newns',
  'setns',
  'mount',
  'umount2',
  'chroot',
  'pivot_root',
  'ptrace_traceme',
  'process_vm_readv',
  'keyctl',
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'io_uring_setup',
  'personality_no_aslr',
  'sync',
  'syncfs',
  'sched_setscheduler_fifo',
  'sched_setattr',
  'set_mempolicy',
];
/** Refused by family, type or protocol before the kernel creates a socket (or loads a module for one). */
const MUST_FAIL_WITH_EAFNOSUPPORT = [
  'socket_vsock',
  'socket_packet',
  'socket_netlink_xfrm',
  'socket_netlink_uevent',
  'socket_netlink_generic',
  'socket_mptcp',
  'socket_inet_seqpacket',
  'socket_raw_icmp',
  'socketpair_tipc',
  'socketpair_vsock',
  'socketpair_inet',
];
const MUST_SUCCEED = [
  'getpid',
  'write_devnull',
  'clone_fork',
  'socket_inet',
  'socket_inet6_udp',
  'socket_netlink_route',
  'socketpair_unix',
  'sched_setscheduler_other',
  'personality_query',
];

test('the default profile denies escapes with EPERM, foreign sockets with EAFNOSUPPORT, and allows ordinary calls', (t) => {
  if (skipped(t)) return;
  const results = runProbes(writeFilter('default.bpf', loadAndCompile(DEFAULT_PROFILE).bpf));
  for (const probe of MUST_SUCCEED) assert.equal(results.get(probe), 'ok', `${probe} must succeed`);
  for (const probe of MUST_FAIL_WITH_EPERM) {
    assert.equal(results.get(probe), String(EPERM), `${probe} must fail with EPERM`);
  }
  for (const probe of MUST_FAIL_WITH_EAFNOSUPPORT) {
    assert.equal(results.get(probe), String(EAFNOSUPPORT), `${probe} must fail with EAFNOSUPPORT`);
  }
  assert.equal(results.get('clone3'), String(ENOSYS), 'clone3 must fail with ENOSYS so glibc falls back to clone');
  assert.equal(results.get('io_setup'), String(ENOSYS), 'kernel aio must fail with ENOSYS, as without CONFIG_AIO');
});

const X86_64_ONLY = { skip: process.arch !== 'x64' && 'x86_64 only' };

test('a syscall through the i386 or x32 ABI kills the process: the filter is native-only', X86_64_ONLY, (t) => {
  if (skipped(t)) return;
  const results = runProbes(writeFilter('default.bpf', loadAndCompile(DEFAULT_PROFILE).bpf));
  // x32 numbers reach seccomp even when the kernel has the x32 ABI disabled.
  assert.equal(results.get('x32_unshare'), `signal:${SIGSYS}`);
  // int 0x80 is killed too (or faults first where ia32 emulation is off): never an escape.
  assert.notEqual(results.get('i386_unshare'), 'ok');
  assert.notEqual(results.get('i386_getpid'), 'ok');
});

test("a profile's errnoRet and kill actions are what the child sees", (t) => {
  if (skipped(t)) return;
  const profile = validateProfile(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['keyctl'], action: 'SCMP_ACT_ERRNO', errnoRet: ENODATA },
        { names: ['unshare'], action: 'SCMP_ACT_KILL_PROCESS' },
      ],
    },
    'inline:errno-and-kill',
  );
  const results = runProbes(writeFilter('custom.bpf', compileProfile(profile)));
  assert.equal(results.get('getpid'), 'ok');
  assert.equal(results.get('keyctl'), String(ENODATA));
  assert.equal(results.get('unshare_newuser'), `signal:${SIGSYS}`);
});

test('toolchains run under the default profile', async (t) => {
  if (skipped(t)) return;
  const filter = writeFilter('default.bpf', loadAndCompile(DEFAULT_PROFILE).bpf);

  await t.test('sh with a pipeline and a subshell', () => {
    const run = execUnder(filter, ['sh', '-c', 'echo hi | cat && (true & wait) && echo done']);
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /hi\ndone/);
  });

  await t.test('node with a worker thread and a child process', () => {
    const script =
      'const { Worker } = require("node:worker_threads");' +
      'new Worker("1", { eval: true }).on("exit", () => {' +
      '  process.stdout.write(require("node:child_process").execFileSync("sh", ["-c", "echo child"]));' +
      '});';
    const run = execUnder(filter, [process.execPath, '-e', script]);
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /child/);
  });

  await t.test('python3 with a thread and a subprocess', (sub) => {
    if (!hasCommand('python3')) return sub.skip('python3 is not installed');
    const script =
      'import threading, subprocess; t = threading.Thread(target=print); t.start(); t.join();' +
      'print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout)';
    const run = execUnder(filter, ['python3', '-c', script]);
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /child/);
  });

  await t.test('cc compiles (cc1, as, ld) and the program runs', (sub) => {
    if (!hasCommand('cc')) return sub.skip('cc is not installed');
    writeFileSync(join(workDir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n');
    const build = execUnder(filter, ['cc', '-O2', '-o', 'hello', 'hello.c']);
    assert.equal(build.status, 0, build.output);
    const run = execUnder(filter, ['./hello']);
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /hello/);
  });

  await t.test('javac and java with a thread', (sub) => {
    if (!hasCommand('javac') || !hasCommand('java')) return sub.skip('a jdk is not installed');
    writeFileSync(
      join(workDir, 'Main.java'),
      'public class Main { public static void main(String[] a) throws Exception {' +
        ' Thread t = new Thread(() -> {}); t.start(); t.join(); System.out.println("java ok"); } }\n',
    );
    const build = execUnder(filter, ['javac', '-d', '.', 'Main.java']);
    assert.equal(build.status, 0, build.output);
    const run = execUnder(filter, ['java', '-cp', '.', 'Main']);
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /java ok/);
  });
});
