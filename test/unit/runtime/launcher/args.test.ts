import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { launcherArgs, type LaunchSpec } from '../../../../runtime/launcher/args.ts';

const launcherSource = readFileSync(new URL('../../../../runtime/native/launcher.c', import.meta.url), 'utf8');

const SPEC: LaunchSpec = {
  image: { name: 'test', lowers: ['/images/base'], binds: [{ source: '/usr/lib/jvm', target: '/usr/lib/jvm' }] },
  scratchDir: '/state/scratch/slot-0',
  rootHostId: 700000,
  userHostId: 700001,
  cgroupDirs: ['/sys/fs/cgroup/memory/brig/slot-0', '/sys/fs/cgroup/pids/brig/slot-0'],
  box: { dir: '/state/runs/slot-0/job', mode: 'overlay' },
  cwd: '/box',
  env: { PATH: '/usr/bin:/bin' },
  argv: ['/usr/bin/python3', 'main.py'],
  limits: { cpuMs: 1500, wallMs: 2500, memoryMb: 64, processes: 8, outputBytes: 1024, fileSizeMb: 4, openFiles: 32, stackMb: 8, diskMb: 16 },
};

/** The options launcher.c parse_args() knows: each is compared with strcmp(o, "--name"). */
function launcherOptions(): Set<string> {
  return new Set([...launcherSource.matchAll(/strcmp\(o, "(--[a-z-]+)"\)/g)].map((m) => m[1]!));
}

test('every option the runtime passes is one the launcher parses', () => {
  const known = launcherOptions();
  assert.ok(known.size >= 10, `found only ${known.size} options in launcher.c`);
  const args = launcherArgs(SPEC);
  const passed = args.slice(0, args.indexOf('--')).filter((a) => a.startsWith('--'));
  assert.deepEqual(passed.filter((o) => !known.has(o)), []);
});

test('the wall limit reaches the launcher in milliseconds, for init to enforce', () => {
  const args = launcherArgs(SPEC);
  assert.equal(args[args.indexOf('--wall-ms') + 1], '2500');
  assert.equal(args.filter((a) => a === '--wall-ms').length, 1);
});

test('the program and its arguments follow "--" unchanged', () => {
  const args = launcherArgs(SPEC);
  assert.deepEqual(args.slice(args.indexOf('--') + 1), SPEC.argv);
});
