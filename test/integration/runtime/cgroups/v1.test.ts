/**
 * cgroup v1 against the real kernel: limits, counters, OOM kills, pids.max and
 * teardown, with real child processes. Everything lives under a parent named
 * brig-test-<pid> and is removed at the end, pass or fail.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CgroupManager, detectCgroups, type RunCgroup } from '../../../../runtime/cgroups/manager.ts';
import type { V1CgroupManager } from '../../../../runtime/cgroups/v1/manager.ts';

const MIB = 1024 * 1024;
const NS_PER_MS = 1_000_000;
/** The random part keeps runs apart when several pid namespaces share this cgroupfs and reuse pids. */
const PARENT_NAME = `brig-test-${process.pid}-${randomBytes(4).toString('hex')}`;
const LIMITS = { memoryBytes: 256 * MIB, cpuQuotaCores: 1, pids: 64 };
const EXIT_TIMEOUT_MS = 20_000;

function openManager(): { manager?: CgroupManager; skip: string | false } {
  if (process.getuid?.() !== 0) return { skip: 'needs root to create cgroups' };
  try {
    return { manager: detectCgroups({ version: 1, parentName: PARENT_NAME }), skip: false };
  } catch (err) {
    return { skip: `no cgroup v1 hierarchy on this host: ${(err as Error).message}` };
  }
}

const { manager, skip } = openManager();
const v1 = manager as V1CgroupManager | undefined;
const parentDirs = v1 ? [...new Set(Object.values(v1.mountPoints))].map((mount) => join(mount, PARENT_NAME)) : [];

/** Set when the run is being stopped: no new cgroup may be made while cleanup runs. */
let stopping = false;

/** Every test gets its cgroup here, so a stopped run cannot create one behind its cleanup. */
function openSlot(name: string): RunCgroup {
  if (stopping) throw new Error('the test run is stopping');
  manager!.ensureParent();
  return manager!.open(name);
}

/** Remove every cgroup this file made, then the parents; also runs when a test failed halfway. */
async function removeEverything(): Promise<void> {
  if (!manager) return;
  await manager.sweep(() => false);
  for (const dir of parentDirs) if (fs.existsSync(dir)) fs.rmdirSync(dir);
}
after(removeEverything);
// A run stopped by a signal (a timeout, ^C) still cleans up before it exits.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopping = true;
    void removeEverything().finally(() => process.exit(1));
  });
}

interface Sandboxed {
  child: ChildProcess;
  stderr: () => string;
  /** Let the program start: the launcher's "go" after the sandbox is built. */
  go(): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts a shell that moves itself into every dir of the cgroup (as the launcher
 * does with its child), says "ready", waits for a line on stdin, then execs `command`.
 */
async function startInCgroup(cgroup: RunCgroup, command: string, env: Record<string, string> = {}): Promise<Sandboxed> {
  const script = `for dir in "$@"; do echo $$ > "$dir/cgroup.procs"; done; echo ready; read go; exec ${command}`;
  const child = spawn('sh', ['-c', script, 'sh', ...cgroup.dirs], {
    env: { ...process.env, ...env, NODE: process.execPath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString().trim(), 'ready', `child failed to join the cgroup: ${stderr}`);
  return { child, stderr: () => stderr, go: () => child.stdin!.write('go\n'), exited };
}

/** A node program that burns CPU for BURN_MS, then touches ALLOC_MB of memory in 8 MiB chunks. */
const WORKLOAD =
  '"$NODE" -e "const end = Date.now() + Number(process.env.BURN_MS); while (Date.now() < end); const kept = []; for (let i = 0; i < Number(process.env.ALLOC_MB) / 8; i++) kept.push(Buffer.alloc(8 << 20, 1)); console.log(kept.length)"';

async function runWorkload(cgroup: RunCgroup, burnMs: number, allocMb: number) {
  const run = await startInCgroup(cgroup, WORKLOAD, { BURN_MS: String(burnMs), ALLOC_MB: String(allocMb) });
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  run.go();
  const exit = await withTimeout(run.exited);
  return { exit, usage: cgroup.usage(), stderr: run.stderr() };
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('child did not exit in time')), EXIT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function readFile(dir: string, file: string): string {
  return fs.readFileSync(join(dir, file), 'utf8').trim();
}

test('detection finds every v1 controller and describe() says so', { skip }, () => {
  assert.equal(manager!.version, 1);
  const checks = manager!.describe();
  for (const name of [
    'cgroup version',
    'controller memory',
    'controller cpu',
    'controller cpuacct',
    'controller pids',
    'oom kill counter',
  ]) {
    assert.equal(checks.find((check) => check.name === name)?.ok, true, name);
  }
});

test('applyLimits writes the limits into each hierarchy', { skip }, async () => {
  const cgroup = openSlot('slot-limits');
  cgroup.applyLimits(LIMITS);
  const { memory, cpu, pids } = v1!.mountPoints;
  const dir = (mount: string) => join(mount, PARENT_NAME, 'slot-limits');
  assert.equal(readFile(dir(memory), 'memory.limit_in_bytes'), String(256 * MIB));
  if (fs.existsSync(join(dir(memory), 'memory.memsw.limit_in_bytes'))) {
    assert.equal(readFile(dir(memory), 'memory.memsw.limit_in_bytes'), String(256 * MIB), 'no room left for swap');
  }
  assert.equal(readFile(dir(cpu), 'cpu.cfs_period_us'), '100000');
  assert.equal(readFile(dir(cpu), 'cpu.cfs_quota_us'), '100000');
  assert.equal(readFile(dir(pids), 'pids.max'), '64');

  cgroup.applyLimits({ ...LIMITS, memoryBytes: 512 * MIB, cpuQuotaCores: 0.5 });
  assert.equal(readFile(dir(memory), 'memory.limit_in_bytes'), String(512 * MIB), 'raising the limit past memsw works');
  assert.equal(readFile(dir(cpu), 'cpu.cfs_quota_us'), '50000');
  await cgroup.destroy();
});

test('CPU and memory are counted from reset, and a reused cgroup shows only the current run', { skip }, async () => {
  const cgroup = openSlot('slot-counters');
  cgroup.applyLimits(LIMITS);

  const first = await runWorkload(cgroup, 400, 64);
  assert.deepEqual(first.exit, { code: 0, signal: null }, first.stderr);
  assert.ok(first.usage.cpuNs >= 350 * NS_PER_MS, `cpuNs ${first.usage.cpuNs} covers the 400 ms burn`);
  assert.ok(first.usage.cpuNs < 10_000 * NS_PER_MS, `cpuNs ${first.usage.cpuNs} is plausible`);
  assert.ok(first.usage.memoryPeakBytes >= 64 * MIB, `peak ${first.usage.memoryPeakBytes} covers the 64 MiB`);
  assert.ok(first.usage.memoryPeakBytes <= LIMITS.memoryBytes, `peak ${first.usage.memoryPeakBytes} is under the limit`);
  assert.equal(first.usage.oomKills, 0);
  assert.equal(cgroup.isEmpty(), true);

  cgroup.applyLimits(LIMITS);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  const idle = cgroup.usage();
  assert.equal(idle.cpuNs, 0, 'nothing ran since the reset');
  assert.ok(idle.memoryPeakBytes < MIB, `peak ${idle.memoryPeakBytes} starts near 0`);
  assert.equal(idle.oomKills, 0);

  const second = await runWorkload(cgroup, 0, 8);
  assert.deepEqual(second.exit, { code: 0, signal: null }, second.stderr);
  assert.ok(second.usage.cpuNs < first.usage.cpuNs - 300 * NS_PER_MS, `run 2 cpuNs ${second.usage.cpuNs} excludes run 1's burn`);
  assert.ok(second.usage.memoryPeakBytes < 64 * MIB, `run 2 peak ${second.usage.memoryPeakBytes} excludes run 1's 64 MiB`);
  await cgroup.destroy();
});

test('an allocation over the memory limit is OOM-killed and counted once', { skip }, async () => {
  const cgroup = openSlot('slot-oom');
  const memoryBytes = 128 * MIB;
  cgroup.applyLimits({ ...LIMITS, memoryBytes });
  const run = await runWorkload(cgroup, 0, 512);
  assert.equal(run.exit.signal, 'SIGKILL', `the OOM killer ended it: ${JSON.stringify(run.exit)} ${run.stderr}`);
  assert.equal(run.usage.oomKills, 1);
  assert.ok(run.usage.memoryPeakBytes <= memoryBytes, `peak ${run.usage.memoryPeakBytes} stays under the limit`);

  cgroup.applyLimits({ ...LIMITS, memoryBytes });
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  assert.equal(cgroup.usage().oomKills, 0, 'the next run starts with no OOM kill');
  await cgroup.destroy();
});

test('pids.max stops a fork loop, and killAll/waitEmpty clear what it left', { skip }, async () => {
  const cgroup = openSlot('slot-pids');
  const pids = 8;
  cgroup.applyLimits({ ...LIMITS, pids });
  const run = await startInCgroup(cgroup, `sh -c 'i=0; while [ $i -lt 50 ]; do sleep 60 & i=$((i+1)); done; echo all forked; wait'`);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  run.go();
  const exit = await withTimeout(run.exited);
  assert.notEqual(exit.code, 0, 'the loop failed to fork');
  assert.match(run.stderr(), /fork/i);
  const pidsDir = join(v1!.mountPoints.pids, PARENT_NAME, 'slot-pids');
  const inside = readFile(pidsDir, 'cgroup.procs').split('\n').filter(Boolean);
  assert.ok(inside.length > 0 && inside.length <= pids, `${inside.length} processes left, at most ${pids}`);

  assert.equal(cgroup.isEmpty(), false);
  cgroup.killAll();
  await cgroup.waitEmpty(5000);
  assert.equal(cgroup.isEmpty(), true);
  await cgroup.destroy();
});

test('destroy kills a running sandbox, removes every dir, and is idempotent', { skip }, async () => {
  const cgroup = openSlot('slot-destroy');
  cgroup.applyLimits(LIMITS);
  const run = await startInCgroup(cgroup, 'sleep 600');
  run.go();
  assert.equal(cgroup.isEmpty(), false);
  await cgroup.destroy();
  assert.equal((await withTimeout(run.exited)).signal, 'SIGKILL');
  for (const dir of cgroup.dirs) assert.equal(fs.existsSync(dir), false, dir);
  await cgroup.destroy();
});

test('sweep removes crashed slots with their processes and keeps live ones', { skip }, async () => {
  const live = openSlot('slot-live');
  const crashed = openSlot('slot-crashed');
  const run = await startInCgroup(crashed, 'sleep 600');
  run.go();
  assert.deepEqual(await manager!.sweep((name) => name === 'slot-live'), ['slot-crashed']);
  assert.equal((await withTimeout(run.exited)).signal, 'SIGKILL');
  for (const dir of crashed.dirs) assert.equal(fs.existsSync(dir), false, dir);
  for (const dir of live.dirs) assert.equal(fs.existsSync(dir), true, dir);
});

test('nothing is left behind in any hierarchy', { skip }, async () => {
  await removeEverything();
  assert.ok(parentDirs.length >= 3, 'memory, cpu(acct) and pids hierarchies');
  for (const dir of parentDirs) assert.equal(fs.existsSync(dir), false, dir);
});

test('a parent cgroup that Brig did not create is refused, and its children are left alone', { skip }, () => {
  const foreignName = `${PARENT_NAME}-foreign`;
  const foreign = detectCgroups({ version: 1, parentName: foreignName });
  // Someone else's cgroup, with a child of theirs, where BRIG_CGROUP_PARENT points: in the last hierarchy Brig uses.
  const dir = join(v1!.mountPoints.pids, foreignName);
  fs.mkdirSync(join(dir, 'theirs'), { recursive: true });
  try {
    assert.throws(
      () => foreign.ensureParent(),
      (err: unknown) => {
        assert.equal((err as { code: string }).code, 'cgroup_parent_foreign');
        assert.match((err as Error).message, /not created by Brig.*BRIG_CGROUP_PARENT/);
        return true;
      },
    );
    assert.ok(fs.existsSync(join(dir, 'theirs')), 'their child cgroup is untouched');
    for (const mount of new Set(Object.values(v1!.mountPoints))) {
      if (mount !== v1!.mountPoints.pids)
        assert.equal(fs.existsSync(join(mount, foreignName)), false, `nothing was created in ${mount} first`);
    }
  } finally {
    fs.rmdirSync(join(dir, 'theirs'));
    fs.rmdirSync(dir);
  }
});

test('a parent Brig made is marked, and found again by the next process', { skip }, () => {
  manager!.ensureParent();
  const again = detectCgroups({ version: 1, parentName: PARENT_NAME });
  assert.doesNotThrow(() => again.ensureParent());
  for (const dir of parentDirs) assert.equal(fs.readdirSync(dir).includes('theirs'), false);
});
