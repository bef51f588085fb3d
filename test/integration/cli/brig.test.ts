import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { uidBase } from '../../helpers/uid-bases.ts';

const BRIG = new URL('../../../bin/brig.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'brig-cli-'));
chmodSync(work, 0o711);
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs the real `brig` command with a private state dir and cgroup parent. */
function brig(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [BRIG, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      BRIG_STATE_DIR: join(work, 'state'),
      BRIG_CGROUP_PARENT: `brig-test-${process.pid}`,
      BRIG_UID_BASE: String(uidBase('cli/brig')),
      ...env,
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function file(name: string, content: string): string {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
}

test('brig --help lists the commands and exit codes and exits 0', () => {
  const r = brig(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /brig run/);
  assert.match(r.stdout, /brig doctor/);
  assert.match(r.stdout, /Exit codes/);
  assert.equal(brig(['run', '--help']).code, 0);
});

test('brig run --json prints {compile, run} and exits 0 even when the program fails', () => {
  const ok = brig(['run', '--json', '--stdin', file('in.txt', '21\n'), file('double.py', 'print(int(input()) * 2)\n')]);
  assert.equal(ok.code, 0, ok.stderr);
  const result = JSON.parse(ok.stdout);
  assert.equal(result.compile, null);
  assert.equal(result.run.stdout, '42\n');
  assert.equal(result.run.verdict, 'ok');
  for (const key of ['stdout', 'stderr', 'exitCode', 'signal', 'verdict', 'cpuMs', 'wallMs', 'memoryKb', 'maxRssKb', 'truncated'])
    assert.ok(key in result.run, key);

  const slow = brig(['run', '--json', '--cpu-ms', '300', file('spin.py', 'while True: pass\n')]);
  assert.equal(slow.code, 0, slow.stderr);
  assert.equal(JSON.parse(slow.stdout).run.verdict, 'time_limit');
});

test('brig run compiles C and reports a compile failure with the compiler message', () => {
  const ok = brig(['run', file('add.c', '#include <stdio.h>\nint main(){printf("%d\\n", 2+3);}\n')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, '5\n');
  const bad = brig(['run', '--json', file('bad.c', 'int main( {\n')]);
  assert.equal(bad.code, 0, bad.stderr);
  const result = JSON.parse(bad.stdout);
  assert.equal(result.run, null);
  assert.match(result.compile.stderr, /error/);
});

test('bad usage exits 2 with a message: no file, unknown language, a limit over the maximum, an unknown option', () => {
  const cases = [
    { args: ['run'], message: /at least one FILE/ },
    { args: ['run', file('x.unknown', 'x')], message: /cannot tell the language/ },
    { args: ['run', '--language', 'cobol', file('y.py', 'print(1)')], message: /unknown language "cobol"/ },
    { args: ['run', '--memory-mb', '999999', file('z.py', 'print(1)')], message: /over the server maximum/ },
    { args: ['run', '--bogus', file('w.py', 'print(1)')], message: /bogus/ },
    { args: ['frobnicate'], message: /unknown command/ },
  ];
  for (const { args, message } of cases) {
    const r = brig(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('a host problem exits 3: an invalid config value', () => {
  const r = brig(['run', file('v.py', 'print(1)')], { BRIG_UID_BASE: 'lots' });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /BRIG_UID_BASE/);
});

test('brig doctor checks the kernel features and every language, one line each, and exits 0 here', () => {
  const r = brig(['doctor']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const name of [
    'root',
    'user namespaces',
    'overlayfs',
    'seccomp',
    'launcher',
    'cgroups',
    'runtime',
    'language python',
    'language java',
    'language c',
  ]) {
    assert.match(r.stdout, new RegExp(`^ok +${name}`, 'm'), `missing ok line for ${name}:\n${r.stdout}`);
  }
  assert.match(r.stdout, /language python: Python 3\.\d+/);
});

test('brig doctor says what to do when the launcher is missing, and exits 1', () => {
  const r = brig(['doctor'], { BRIG_LAUNCHER: '/nonexistent/brig-launcher' });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL +launcher/);
  assert.match(r.stdout, /fix: build it: npm run build/);
});

test('brig api on a public address without keys exits 3 and says how to fix it; the worker metrics bind to loopback too', () => {
  const r = brig(['api'], { HOST: '0.0.0.0', REDIS_URL: 'redis://127.0.0.1:1', BRIG_API_KEYS: '' });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /BRIG_API_KEYS/);
  assert.match(r.stderr, /BRIG_ALLOW_ANONYMOUS=1/);
  assert.match(brig(['api', '--help']).stdout, /127\.0\.0\.1:8080/);
});
