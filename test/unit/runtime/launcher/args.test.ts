import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  type GoSpec,
  goMessage,
  goWords,
  launcherArgs,
  SANDBOX_OOM_SCORE_ADJ,
  type SandboxSpec,
} from '../../../../runtime/launcher/args.ts';
import { KERNEL_MASKED_PATHS, OCI_READONLY_PATHS } from '../../../../runtime/launcher/kernel-view.ts';
import { MAX_GO_BYTES } from '../../../../runtime/launcher/protocol.ts';
import { RLIMIT_CORE_NO_DUMP, RLIMIT_NAMES } from '../../../../runtime/launcher/rlimits.ts';

const launcherSource = readFileSync(new URL('../../../../runtime/launcher/launcher.c', import.meta.url), 'utf8');
/** RLIM_NLIMITS in the kernel's uapi headers since 2.6.25 (RLIMIT_RTTIME was the last one added). */
const RLIM_NLIMITS = 16;

const SANDBOX: SandboxSpec = {
  image: { name: 'test', lowers: ['/images/base'], binds: [{ source: '/usr/lib/jvm', target: '/usr/lib/jvm' }], masks: ['/usr/local'] },
  scratchDir: '/state/scratch/slot-0',
  rootHostId: 700000,
  userHostId: 700001,
  cgroupDirs: ['/sys/fs/cgroup/memory/brig/slot-0', '/sys/fs/cgroup/pids/brig/slot-0'],
  tmpfsBytes: 64 << 20,
};

const SPEC: GoSpec = {
  box: { dir: '/state/runs/slot-0/job', mode: 'overlay' },
  cwd: '/box',
  env: { PATH: '/usr/bin:/bin' },
  argv: ['/usr/bin/python3', 'main.py'],
  limits: {
    cpuMs: 1500,
    wallMs: 2500,
    memoryMb: 64,
    processes: 8,
    outputBytes: 1024,
    fileSizeMb: 4,
    openFiles: 32,
    stackMb: 8,
    diskMb: 16,
  },
};

/** The options a launcher.c parser knows (parse_args for argv, parse_step for the go message): each is compared with strcmp(o, "--name"). */
function launcherOptions(parser: 'parse_args' | 'parse_step'): Set<string> {
  const start = launcherSource.indexOf(`static void ${parser}(`);
  const body = launcherSource.slice(start, launcherSource.indexOf('\n}\n', start));
  return new Set([...body.matchAll(/strcmp\(o, "(--[a-z-]+)"\)/g)].map((m) => m[1]!));
}

/** The rlimit names of launcher.c's rlimit_names table: `{ "cpu", RLIMIT_CPU }`. */
function launcherRlimits(): Map<string, string> {
  return new Map([...launcherSource.matchAll(/\{ "([a-z]+)", (RLIMIT_[A-Z]+) \}/g)].map((m) => [m[1]!, m[2]!]));
}

/** Values of every occurrence of a one-value option. */
function valuesOf(args: string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option ? [args[i + 1]!] : []));
}

function rlimitsOf(args: string[]): Map<string, string> {
  return new Map(args.flatMap((a, i) => (a === '--rlimit' ? [[args[i + 1]!, args[i + 2]!] as [string, string]] : [])));
}

test('every option the runtime passes is one the launcher parses, in argv or in the go message', () => {
  const known = launcherOptions('parse_args');
  assert.ok(known.size >= 9, `found only ${known.size} argv options in launcher.c`);
  const passed = launcherArgs(SANDBOX).filter((a) => a.startsWith('--'));
  assert.deepEqual(
    passed.filter((o) => !known.has(o)),
    [],
  );
  for (const option of ['--mask', '--ro', '--oom-score-adj', '--cgroup'])
    assert.ok(passed.includes(option), `the runtime never passes ${option}`);

  const knownInGo = launcherOptions('parse_step');
  assert.ok(knownInGo.size >= 7, `found only ${knownInGo.size} go options in launcher.c`);
  const words = goWords(SPEC);
  const passedInGo = words.slice(0, words.indexOf('--')).filter((a) => a.startsWith('--'));
  assert.deepEqual(
    passedInGo.filter((o) => !knownInGo.has(o)),
    [],
  );
  for (const option of ['--box-mode', '--wall-ms', '--rlimit', '--root-bytes'])
    assert.ok(passedInGo.includes(option), `the runtime never sends ${option}`);
});

test('the wall limit reaches the launcher in milliseconds, for init to enforce', () => {
  assert.deepEqual(valuesOf(goWords(SPEC), '--wall-ms'), ['2500']);
});

test('the program and its arguments follow "--" unchanged', () => {
  const words = goWords(SPEC);
  assert.deepEqual(words.slice(words.indexOf('--') + 1), SPEC.argv);
});

test('the go message is its length, then NUL-terminated words; a word holding a NUL or a message over the bound is refused', () => {
  const message = goMessage(SPEC);
  const body = message.subarray(4);
  assert.equal(message.readUInt32LE(0), body.length);
  assert.equal(body.at(-1), 0);
  assert.deepEqual(body.subarray(0, -1).toString().split('\0'), goWords(SPEC));
  assert.throws(() => goMessage({ ...SPEC, argv: ['/usr/bin/python3', 'a\0--box\0/etc'] }), { code: 'go_message_invalid' });
  assert.throws(() => goMessage({ ...SPEC, env: { X: 'y\0z' } }), { code: 'go_message_invalid' });
  assert.throws(() => goMessage({ ...SPEC, argv: ['/bin/true', 'x'.repeat(MAX_GO_BYTES)] }), { code: 'go_message_invalid' });
});

test('every rlimit of the kernel is set, once, by a name the launcher knows for the same RLIMIT_*', () => {
  const known = launcherRlimits();
  assert.equal(known.size, RLIM_NLIMITS, `launcher.c names ${known.size} rlimits: ${[...known.keys()].join(', ')}`);
  assert.equal(new Set(known.values()).size, RLIM_NLIMITS, 'two names map to the same RLIMIT_*');
  assert.deepEqual([...RLIMIT_NAMES].sort(), [...known.keys()].sort());
  const args = goWords(SPEC);
  const passed = rlimitsOf(args);
  assert.equal(valuesOf(args, '--rlimit').length, RLIM_NLIMITS, 'an rlimit is passed twice');
  assert.deepEqual([...passed.keys()].sort(), [...known.keys()].sort());
  for (const [name, value] of passed)
    assert.match(value, /^(\d+|unlimited)$/, `rlimit ${name}=${value} is neither a number nor "unlimited"`);
});

test("the rlimits carry the step's limits, no core dump of any kind, and nothing a program could use to raise its priority", () => {
  const r = rlimitsOf(goWords(SPEC));
  assert.equal(r.get('core'), String(RLIMIT_CORE_NO_DUMP));
  assert.equal(r.get('core'), '1', 'RLIMIT_CORE must be exactly 1: 0 does not stop a core_pattern pipe helper');
  assert.equal(r.get('cpu'), '3', '1500 ms rounds up to 2 s, plus 1 s of slack behind the cgroup poll');
  assert.equal(r.get('fsize'), String(4 * 1024 * 1024));
  assert.equal(r.get('nofile'), '32');
  assert.equal(r.get('nproc'), '16', 'twice the processes: the pids cgroup must stay what refuses a fork');
  assert.equal(r.get('stack'), String(8 * 1024 * 1024));
  for (const name of ['memlock', 'msgqueue', 'nice', 'rtprio']) assert.equal(r.get(name), '0', name);
  for (const name of ['as', 'data'])
    assert.equal(r.get(name), 'unlimited', `${name}: the JVM and V8 reserve address space they never touch`);
});

test("/proc is masked like an OCI runtime masks it, plus host-wide counters, and the image's masks come along", () => {
  const args = launcherArgs(SANDBOX);
  const masks = valuesOf(args, '--mask');
  const readOnly = valuesOf(args, '--ro');
  for (const oci of [
    '/proc/acpi',
    '/proc/asound',
    '/proc/kcore',
    '/proc/keys',
    '/proc/latency_stats',
    '/proc/timer_list',
    '/proc/timer_stats',
    '/proc/sched_debug',
    '/proc/scsi',
    '/sys/firmware',
  ]) {
    assert.ok(masks.includes(oci), `OCI masks ${oci}`);
  }
  for (const hostWide of [
    '/proc/cmdline',
    '/proc/cgroups',
    '/proc/pressure',
    '/proc/interrupts',
    '/proc/sys/kernel',
    '/proc/stat',
    '/proc/loadavg',
  ]) {
    assert.ok(masks.includes(hostWide), `${hostWide} shows host-wide state`);
  }
  assert.deepEqual(readOnly, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  assert.deepEqual(masks, [...KERNEL_MASKED_PATHS, '/usr/local']);
  assert.deepEqual(readOnly, OCI_READONLY_PATHS);
  for (const kept of ['/proc/self', '/proc/cpuinfo', '/proc/meminfo', '/proc/mounts', '/proc/sys'])
    assert.ok(!masks.includes(kept), `${kept} is needed by language runtimes`);
  for (const path of [...masks, ...readOnly]) assert.match(path, /^\/[^\0]*$/, `${path} is not absolute`);
});

test("the sandbox gets the highest OOM score, so the host's OOM killer takes it before the worker or Redis", () => {
  assert.equal(SANDBOX_OOM_SCORE_ADJ, 1000);
  assert.deepEqual(valuesOf(launcherArgs(SANDBOX), '--oom-score-adj'), ['1000']);
});
