/**
 * cgroup v2 logic against a fake cgroupfs folder: no root, no kernel needed.
 * Counters are moved by rewriting the fake files, as the kernel would.
 */

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { type CgroupManager, detectCgroups, type RunCgroup } from '../../../../runtime/cgroups/manager.ts';
import { SandboxError } from '../../../../runtime/errors.ts';
import { FAKE_PIDS, FakeCgroupfs, type FakeCgroupfsOptions } from './fake-cgroupfs.ts';

const MIB = 1024 * 1024;
const LIMITS = { memoryBytes: 256 * MIB, cpuQuotaCores: 1, pids: 64 };

interface Setup {
  fake: FakeCgroupfs;
  manager: CgroupManager;
  parent: string;
}

/** A fake host with Brig (in the root cgroup) and its parent set up; cleaned up when the test ends, pass or fail. */
function setUp(t: { after(fn: () => void): void }, opts: FakeCgroupfsOptions = {}): Setup {
  const fake = new FakeCgroupfs(opts);
  t.after(() => fake.cleanup());
  const manager = detectCgroups({
    root: fake.root,
    mountinfoPath: fake.mountinfoPath,
    procCgroupPath: fake.procCgroupPath,
    dirOps: fake.dirOps,
  });
  manager.ensureParent();
  return { fake, manager, parent: join(fake.root, 'brig') };
}

test('detection picks v2 when the cgroup2 mount offers memory, cpu and pids', (t) => {
  const fake = new FakeCgroupfs();
  t.after(() => fake.cleanup());
  const manager = detectCgroups({
    root: fake.root,
    mountinfoPath: fake.mountinfoPath,
    procCgroupPath: fake.procCgroupPath,
    dirOps: fake.dirOps,
  });
  assert.equal(manager.version, 2);
  assert.equal(manager.parentName, 'brig');
});

test('ensureParent in the root cgroup enables the controllers in the parent only, and puts no process in it', (t) => {
  const { fake, parent } = setUp(t);
  assert.equal(fake.read(fake.root, 'cgroup.subtree_control'), 'cpu io memory pids\n', "the root, the host init's, is not written");
  assert.deepEqual(fake.treeWrites, [`${parent}/cgroup.subtree_control +memory +cpu +pids`]);
  assert.equal(fake.read(parent, 'cgroup.subtree_control'), 'cpu memory pids\n');
  assert.equal(fake.read(parent, 'cgroup.procs'), '');
  assert.equal(fake.read(fake.root, 'cgroup.procs'), '1\n', 'the root keeps its own processes');
  assert.equal(fake.isMarked(parent), true);
});

test('ensureParent writes only missing controllers, and nothing when all are enabled', (t) => {
  const { fake, manager, parent } = setUp(t);
  fake.write(parent, 'cgroup.subtree_control', 'cpu\n');
  manager.ensureParent();
  assert.equal(fake.treeWrites.at(-1), `${parent}/cgroup.subtree_control +memory +pids`);
  assert.equal(fake.read(parent, 'cgroup.subtree_control'), 'cpu memory pids\n');
  const writes = fake.treeWrites.length;
  manager.ensureParent();
  assert.equal(fake.treeWrites.length, writes);
});

test('applyLimits writes memory, swap, oom group, cpu and pids in the kernel formats', (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  assert.deepEqual(cgroup.dirs, [join(fake.root, 'brig', 'slot-0')]);
  const [dir] = cgroup.dirs;
  cgroup.applyLimits(LIMITS);
  assert.equal(fake.read(dir, 'memory.max'), String(256 * MIB));
  assert.equal(fake.read(dir, 'memory.swap.max'), '0');
  assert.equal(fake.read(dir, 'memory.oom.group'), '1');
  assert.equal(fake.read(dir, 'cpu.max'), '100000 100000');
  assert.equal(fake.read(dir, 'pids.max'), '64');

  cgroup.applyLimits({ ...LIMITS, cpuQuotaCores: 0.5 });
  assert.equal(fake.read(dir, 'cpu.max'), '50000 100000');
  assert.throws(() => cgroup.applyLimits({ ...LIMITS, pids: 0 }), { code: 'cgroup_invalid_limit' });
});

test('errors name the cgroup file that failed', (t) => {
  const { manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  fs.rmSync(join(cgroup.dirs[0], 'cpu.max'));
  assert.throws(
    () => cgroup.applyLimits(LIMITS),
    (err: unknown) => err instanceof SandboxError && err.message.includes('cpu.max'),
  );
});

/** Simulates one run: counters move between the resets and usage(). */
function simulateRun(
  fake: FakeCgroupfs,
  cgroup: RunCgroup,
  run: { cpuUsec: [number, number]; currentBytes: number; peakBytes: number; oomKills: [number, number] },
): void {
  const [dir] = cgroup.dirs;
  const events = (oomKills: number) => `low 0\nhigh 0\nmax 3\noom 1\noom_kill ${oomKills}\noom_group_kill 0\n`;
  fake.write(dir, 'cpu.stat', `usage_usec ${run.cpuUsec[0]}\nuser_usec 1\nsystem_usec 1\n`);
  fake.write(dir, 'memory.current', `${run.currentBytes}\n`);
  fake.write(dir, 'memory.events.local', events(run.oomKills[0]));
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  assert.equal(fake.read(dir, 'memory.peak').slice(0, 'reset'.length), 'reset', 'the reset is a write to memory.peak');
  fake.resetPeak(dir);
  fake.write(dir, 'cpu.stat', `usage_usec ${run.cpuUsec[1]}\nuser_usec 1\nsystem_usec 1\n`);
  fake.write(dir, 'memory.peak', `${run.peakBytes}\n`);
  fake.write(dir, 'memory.events.local', events(run.oomKills[1]));
}

test('usage() reports deltas from the last reset, so earlier runs never show', (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  cgroup.applyLimits(LIMITS);
  simulateRun(fake, cgroup, { cpuUsec: [5000, 7500], currentBytes: 10 * MIB, peakBytes: 30 * MIB, oomKills: [2, 3] });
  assert.deepEqual(cgroup.usage(), { cpuNs: 2_500_000, memoryPeakBytes: 20 * MIB, oomKills: 1 });
  assert.equal(cgroup.cpuNs(), 2_500_000);

  cgroup.applyLimits(LIMITS);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.resetPeak(cgroup.dirs[0]);
  assert.deepEqual(cgroup.usage(), { cpuNs: 0, memoryPeakBytes: 0, oomKills: 0 }, 'a fresh reset starts at zero');

  simulateRun(fake, cgroup, { cpuUsec: [7500, 8000], currentBytes: 12 * MIB, peakBytes: 13 * MIB, oomKills: [3, 3] });
  assert.deepEqual(cgroup.usage(), { cpuNs: 500_000, memoryPeakBytes: MIB, oomKills: 0 });
});

test('oom kills come from memory.events.local when present, else memory.events', (t) => {
  const { fake, manager } = setUp(t);
  const local = manager.open('slot-local');
  fake.write(local.dirs[0], 'memory.events', 'oom_kill 40\n');
  local.resetWaitingCounters();
  local.resetPeak();
  fake.write(local.dirs[0], 'memory.events', 'oom_kill 45\n');
  fake.resetPeak(local.dirs[0]);
  assert.equal(local.usage().oomKills, 0, 'descendants counted in memory.events are ignored');

  const dir = join(fake.root, 'brig', 'slot-old-kernel');
  fake.makeCgroup(dir);
  fs.rmSync(join(dir, 'memory.events.local'));
  const old = manager.open('slot-old-kernel');
  fake.write(dir, 'memory.events', 'oom 1\noom_kill 1\n');
  old.resetWaitingCounters();
  old.resetPeak();
  fake.resetPeak(dir);
  fake.write(dir, 'memory.events', 'oom 3\noom_kill 3\n');
  assert.equal(old.usage().oomKills, 2);
});

test('the per-fd memory peak is read back through the fd that was reset', (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  const peakPath = join(dir, 'memory.peak');
  fake.write(dir, 'memory.current', `${4 * MIB}\n`);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  const sameFile = fs.openSync(peakPath, 'r+');
  t.after(() => fs.closeSync(sameFile));
  // Replace the name with another file: only a read through the held fd still sees the first one.
  fs.rmSync(peakPath);
  fake.write(dir, 'memory.peak', `${999 * MIB}\n`);
  fs.ftruncateSync(sameFile);
  fs.writeSync(sameFile, `${9 * MIB}\n`, 0);
  assert.equal(cgroup.usage().memoryPeakBytes, 5 * MIB);
});

test('read-only memory.peak: a used cgroup is recreated before the next run', async (t) => {
  const { fake, manager, parent } = setUp(t, { peak: 'read-only' });
  const reusedDir = join(parent, 'slot-reused');
  fake.makeCgroup(reusedDir);
  fake.write(reusedDir, 'marker', 'from an earlier process');
  manager.open('slot-reused');
  assert.equal(fs.existsSync(join(reusedDir, 'marker')), false, 'open() recreated the idle reused cgroup');

  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  cgroup.applyLimits(LIMITS);
  fake.write(dir, 'memory.current', `${3 * MIB}\n`);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.write(dir, 'memory.peak', `${8 * MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, 5 * MIB, 'peak since creation minus the usage at reset');

  fake.write(dir, 'marker', 'run 1');
  await cgroup.renew();
  assert.equal(fs.existsSync(join(dir, 'marker')), false, 'renew() recreated the cgroup for run 2');
  cgroup.applyLimits(LIMITS);
  assert.equal(fake.read(dir, 'memory.max'), String(256 * MIB), 'unchanged limits are written again into the new cgroup');
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.write(dir, 'memory.peak', `${MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, MIB);

  fake.write(dir, 'cgroup.procs', `${FAKE_PIDS[0]}\n`);
  fake.write(dir, 'marker', 'run 2');
  await cgroup.renew();
  assert.equal(fs.existsSync(join(dir, 'marker')), true, 'a cgroup with processes is not recreated');
});

test("read-only memory.peak in a used cgroup: never an earlier run's peak", (t) => {
  const { fake, manager } = setUp(t, { peak: 'read-only' });
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.write(dir, 'memory.peak', `${8 * MIB}\n`);

  // A caller that skips renew() between runs leaves the cgroup as it was.
  fake.write(dir, 'memory.current', `${4 * MIB}\n`);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.write(dir, 'memory.current', `${6 * MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, 2 * MIB, 'below the earlier peak: the highest usage seen, a lower bound');
  fake.write(dir, 'memory.peak', `${12 * MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, 8 * MIB, 'a new lifetime peak was reached in this run: exact');
});

test('applyLimits writes nothing when the limits are unchanged', (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  cgroup.applyLimits(LIMITS);
  fake.write(dir, 'pids.max', 'untouched');
  cgroup.applyLimits(LIMITS);
  assert.equal(fake.read(dir, 'pids.max'), 'untouched');
  cgroup.applyLimits({ ...LIMITS, pids: 65 });
  assert.equal(fake.read(dir, 'pids.max'), '65');
});

test('no memory.peak: the peak is the highest memory.current sampled by usage()', (t) => {
  const { fake, manager } = setUp(t, { peak: 'absent' });
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  fake.write(dir, 'memory.current', `${2 * MIB}\n`);
  cgroup.resetWaitingCounters();
  cgroup.resetPeak();
  fake.write(dir, 'memory.current', `${7 * MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, 5 * MIB);
  fake.write(dir, 'memory.current', `${3 * MIB}\n`);
  assert.equal(cgroup.usage().memoryPeakBytes, 5 * MIB);
});

test('killAll writes cgroup.kill; waitEmpty waits for the kernel and times out when it never empties', async (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  fake.write(dir, 'cgroup.procs', FAKE_PIDS.map((pid) => `${pid}\n`).join(''));
  assert.equal(cgroup.isEmpty(), false);
  await assert.rejects(cgroup.waitEmpty(20), (err: unknown) => err instanceof SandboxError && err.code === 'cgroup_not_empty');

  cgroup.killAll();
  assert.equal(fake.read(dir, 'cgroup.kill'), '1');
  fake.startKernel();
  await cgroup.waitEmpty(1000);
  assert.equal(cgroup.isEmpty(), true);
});

test('sweep removes only non-live children of the parent, processes and nested cgroups included', async (t) => {
  const { fake, manager, parent } = setUp(t);
  const outside = join(fake.root, 'system.slice');
  fake.makeCgroup(outside, [FAKE_PIDS[0]]);
  fake.write(outside, 'cgroup.kill', '');
  fake.makeCgroup(join(parent, 'slot-0'), [FAKE_PIDS[1]]);
  fake.makeCgroup(join(parent, 'slot-crashed'), [FAKE_PIDS[2]]);
  fake.makeCgroup(join(parent, 'slot-crashed', 'inner'), [FAKE_PIDS[0]]);
  fake.makeCgroup(join(parent, 'slot-idle'));
  fs.symlinkSync(outside, join(parent, 'slot-link'));
  fake.startKernel();

  const removed = await manager.sweep((name) => name === 'slot-0');

  assert.deepEqual(removed, ['slot-crashed', 'slot-idle']);
  assert.equal(fs.existsSync(join(parent, 'slot-crashed')), false);
  assert.equal(fs.existsSync(join(parent, 'slot-idle')), false);
  assert.equal(fake.read(join(parent, 'slot-0'), 'cgroup.procs'), `${FAKE_PIDS[1]}\n`, 'the live slot is untouched');
  assert.equal(fake.read(outside, 'cgroup.procs'), `${FAKE_PIDS[0]}\n`, 'nothing outside the parent is touched, even through a symlink');
  assert.equal(fake.read(outside, 'cgroup.kill'), '');
  assert.equal(fake.read(fake.root, 'cgroup.procs'), '1\n');
});

test('destroy kills, removes the dir, and is idempotent', async (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  fake.write(dir, 'cgroup.procs', `${FAKE_PIDS[0]}\n`);
  fake.startKernel();
  const first = cgroup.destroy();
  assert.equal(cgroup.destroy(), first, 'concurrent calls share one teardown');
  await first;
  assert.equal(fs.existsSync(dir), false);
  await cgroup.destroy();
  assert.equal(fs.existsSync(join(fake.root, 'brig')), true, 'the parent stays');
});

test('open() refuses names that are not one path component', (t) => {
  const { manager } = setUp(t);
  for (const name of ['', '.', '..', '../escape', 'a/b', '.hidden']) {
    assert.throws(() => manager.open(name), { code: 'cgroup_invalid_name' }, name);
  }
});

test('describe() reports the version, the controllers and the peak mode', (t) => {
  const { manager } = setUp(t, { peak: 'read-only' });
  const checks = manager.describe();
  const byName = new Map(checks.map((check) => [check.name, check]));
  assert.match(byName.get('cgroup version')?.detail ?? '', /^v2 at /);
  for (const controller of ['memory', 'cpu', 'pids']) assert.equal(byName.get(`controller ${controller}`)?.ok, true);
  assert.equal(byName.get('parent has no processes')?.ok, true);
  assert.match(byName.get('memory peak')?.detail ?? '', /freshly created/);
});

test("a kept cgroup's renew waits until the last sandbox's kernel memory is given back", async (t) => {
  const { fake, manager } = setUp(t);
  const cgroup = manager.open('slot-0');
  const [dir] = cgroup.dirs;
  const stat = (kernelBytes: number) => `anon 0\nfile 0\nkernel ${kernelBytes}\nslab ${kernelBytes}\n`;
  fake.write(dir, 'memory.stat', stat(MIB / 4));
  await cgroup.renew(); // the first sandbox: the floor is where it starts
  fake.write(dir, 'memory.stat', stat(40 * MIB));
  const given = setTimeout(() => fake.write(dir, 'memory.stat', stat(MIB / 2)), 30);
  t.after(() => clearTimeout(given));
  const start = performance.now();
  await cgroup.renew();
  assert.ok(performance.now() - start >= 25, 'renew resolved while 40 MiB of kernel memory was still charged');
});
