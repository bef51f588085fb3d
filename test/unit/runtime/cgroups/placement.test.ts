/**
 * Where Brig builds on cgroup v2, against the fake cgroupfs: in the root
 * cgroup, in a cgroup delegated as systemd hands one to a service, in a
 * container's cgroup namespace; and how it refuses a cgroup that was not
 * delegated. The fake enforces v2's no-internal-process rule as the kernel
 * does, so a wrong order of steps fails here with EBUSY.
 */

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CgroupCheck, CgroupManager } from '../../../../runtime/cgroups/manager.ts';
import { detectCgroups } from '../../../../runtime/cgroups/manager.ts';
import { DELEGATION_FIX } from '../../../../runtime/cgroups/v2/delegation.ts';
import { locateV2 } from '../../../../runtime/cgroups/v2/placement.ts';
import { ConfigError, HostError } from '../../../../runtime/errors.ts';
import { FAKE_PIDS, FAKE_SELF_PID, FakeCgroupfs, type FakeCgroupfsOptions } from './fake-cgroupfs.ts';

const MIB = 1024 * 1024;
const LIMITS = { memoryBytes: 64 * MIB, cpuQuotaCores: 1, pids: 16 };

function fakeHost(t: { after(fn: () => void): void }, opts: FakeCgroupfsOptions = {}): FakeCgroupfs {
  const fake = new FakeCgroupfs(opts);
  t.after(() => fake.cleanup());
  return fake;
}

function managerOn(fake: FakeCgroupfs, parentName?: string): CgroupManager {
  return detectCgroups({
    root: fake.root,
    mountinfoPath: fake.mountinfoPath,
    procCgroupPath: fake.procCgroupPath,
    dirOps: fake.dirOps,
    parentName,
  });
}

function checksByName(manager: CgroupManager): Map<string, CgroupCheck> {
  return new Map(manager.describe().map((check) => [check.name, check]));
}

test('the fake refuses what the kernel refuses: controllers for children of a cgroup with processes, a process into one that has them', (t) => {
  const fake = fakeHost(t);
  const svc = fake.startIn('/svc', [FAKE_PIDS[0]]);
  assert.throws(() => fake.dirOps.writeTreeFile(`${svc}/cgroup.subtree_control`, '+memory'), { code: 'EBUSY' });
  assert.throws(() => fake.dirOps.writeTreeFile(`${svc}/cgroup.subtree_control`, '+rdma'), { code: 'ENOENT' });
  fake.dirOps.writeTreeFile(`${fake.root}/cgroup.subtree_control`, '+rdma');
  assert.match(fake.read(fake.root, 'cgroup.subtree_control'), /rdma/, 'the root is exempt');

  fake.makeCgroup(join(svc, 'inner'));
  fake.dirOps.writeTreeFile(`${svc}/inner/cgroup.procs`, String(FAKE_PIDS[0]));
  fake.dirOps.writeTreeFile(`${svc}/inner/cgroup.procs`, String(FAKE_SELF_PID));
  assert.equal(fake.ownCgroup(), '0::/svc/inner');
  fake.dirOps.writeTreeFile(`${svc}/cgroup.subtree_control`, '+memory');
  assert.throws(() => fake.dirOps.writeTreeFile(`${svc}/cgroup.procs`, String(FAKE_SELF_PID)), { code: 'EBUSY' });
  assert.throws(() => fake.dirOps.writeTreeFile(`${svc}/inner/cgroup.procs`, '4194999'), { code: 'ESRCH' });
});

test('root placement: the parent is <root>/brig and the slots are under it; the root is never written', (t) => {
  const fake = fakeHost(t);
  const manager = managerOn(fake);
  manager.ensureParent();
  const parent = join(fake.root, 'brig');
  assert.deepEqual(fake.treeWrites, [`${parent}/cgroup.subtree_control +memory +cpu +pids`]);
  assert.equal(fs.existsSync(join(fake.root, 'init')), false, 'the root is exempt from the rule: nothing is moved');
  assert.deepEqual(manager.open('slot-0').dirs, [join(parent, 'slot-0')]);
  const checks = checksByName(manager);
  assert.match(checks.get('placement')?.detail ?? '', /root cgroup/);
  assert.equal(checks.get('parent')?.detail.includes(`Brig builds in ${parent} (exists, made by Brig)`), true);
});

test('root placement with controllers missing from the root: a HostError with the command, and nothing written', (t) => {
  const fake = fakeHost(t, { rootSubtreeControl: 'cpu io\n' });
  const manager = managerOn(fake);
  const fix = `echo "+memory +pids" > ${fake.root}/cgroup.subtree_control`;
  assert.throws(
    () => manager.ensureParent(),
    (err: unknown) => {
      assert.ok(err instanceof HostError);
      assert.equal(err.code, 'cgroup_controllers_not_enabled');
      assert.ok(err.message.includes(fix), err.message);
      return true;
    },
  );
  assert.deepEqual(fake.treeWrites, []);
  assert.equal(fake.read(fake.root, 'cgroup.subtree_control'), 'cpu io\n');
  assert.equal(fs.existsSync(join(fake.root, 'brig')), false);
  const children = checksByName(manager).get('controllers for children');
  assert.equal(children?.ok, false);
  assert.ok(children?.fix?.includes(fix));
});

test('delegated placement: every process of /svc moves to /svc/init, then /svc enables the controllers, then /svc/brig is made', (t) => {
  const fake = fakeHost(t);
  const svc = fake.startIn('/svc', [FAKE_PIDS[0], FAKE_PIDS[1]]); // e.g. a sibling `brig worker` and `brig serve`'s Redis
  const leaf = join(svc, 'init');
  const parent = join(svc, 'brig');
  const rootControl = fake.read(fake.root, 'cgroup.subtree_control');
  const manager = managerOn(fake);

  const before = checksByName(manager);
  assert.equal(before.get('parent')?.detail, `Brig builds in ${parent}: one slot-N cgroup per sandbox slot below it`);
  assert.match(before.get('placement')?.detail ?? '', new RegExp(`moves the processes there into ${leaf}`));
  assert.match(before.get('controllers for children')?.detail ?? '', /Brig will move the processes/);
  assert.deepEqual(fake.treeWrites, [], 'describe() writes nothing');

  manager.ensureParent();

  assert.deepEqual(fake.treeWrites, [
    `${leaf}/cgroup.procs ${FAKE_SELF_PID}`,
    `${leaf}/cgroup.procs ${FAKE_PIDS[0]}`,
    `${leaf}/cgroup.procs ${FAKE_PIDS[1]}`,
    `${svc}/cgroup.subtree_control +memory +cpu +pids`,
    `${parent}/cgroup.subtree_control +memory +cpu +pids`,
  ]);
  assert.deepEqual(fake.pids(leaf), [FAKE_SELF_PID, FAKE_PIDS[0], FAKE_PIDS[1]]);
  assert.deepEqual(fake.pids(svc), []);
  assert.equal(fake.ownCgroup(), '0::/svc/init');
  assert.equal(fake.read(svc, 'cgroup.subtree_control'), 'cpu memory pids\n');
  assert.equal(fake.read(parent, 'cgroup.subtree_control'), 'cpu memory pids\n');
  assert.equal(fake.isMarked(leaf), true, 'the leaf is marked as made by Brig');
  assert.equal(fake.isMarked(parent), true);
  assert.equal(fake.read(fake.root, 'cgroup.subtree_control'), rootControl, 'nothing above the delegated cgroup is written');
  assert.deepEqual(
    fs
      .readdirSync(fake.root, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name),
    ['svc'],
  );

  const slot = manager.open('slot-0');
  assert.deepEqual(slot.dirs, [join(parent, 'slot-0')]);
  slot.applyLimits(LIMITS);
  assert.equal(fake.read(slot.dirs[0], 'memory.max'), String(LIMITS.memoryBytes));
  assert.deepEqual(manager.childNames(), ['slot-0']);
  const after = checksByName(manager);
  assert.equal(after.get('parent')?.detail, `Brig builds in ${parent} (exists, made by Brig): one slot-N cgroup per sandbox slot below it`);
  assert.equal(after.get('controllers for children')?.detail, `enabled in ${svc}/cgroup.subtree_control`);
  assert.equal(after.get('delegation')?.ok, true);
});

test('a second Brig process of the same service, already moved into /svc/init, builds in /svc too and writes nothing new', (t) => {
  const fake = fakeHost(t);
  const svc = fake.startIn('/svc', [FAKE_PIDS[0]]);
  managerOn(fake).ensureParent();
  const writes = fake.treeWrites.length;

  const sibling = managerOn(fake); // its /proc/self/cgroup now says /svc/init
  assert.match(
    checksByName(sibling).get('placement')?.detail ?? '',
    new RegExp(`runs in ${svc}/init, the leaf of its service's processes; it builds in ${svc}$`),
  );
  sibling.ensureParent();
  assert.equal(fake.treeWrites.length, writes);
  assert.deepEqual(sibling.open('slot-1').dirs, [join(svc, 'brig', 'slot-1')]);
});

test('namespace-root placement: a container whose cgroup namespace shows its own cgroup as /', (t) => {
  const fake = fakeHost(t, { namespaceRoot: true });
  fake.startIn('/', [FAKE_PIDS[0]]); // tini and node, say
  const manager = managerOn(fake);
  assert.match(checksByName(manager).get('placement')?.detail ?? '', /moves the processes there/, 'a namespace root is not the root');
  manager.ensureParent();
  const leaf = join(fake.root, 'init');
  const parent = join(fake.root, 'brig');
  assert.deepEqual(fake.pids(leaf), [FAKE_SELF_PID, FAKE_PIDS[0]]);
  assert.equal(fake.ownCgroup(), '0::/init');
  assert.equal(fake.read(fake.root, 'cgroup.subtree_control'), 'cpu memory pids\n');
  assert.deepEqual(manager.open('slot-0').dirs, [join(parent, 'slot-0')]);
  assert.equal(checksByName(managerOn(fake)).get('parent')?.detail.startsWith(`Brig builds in ${parent} `), true);
});

test("namespace-root placement after deploy/entrypoint.sh moved the container's processes into init/", (t) => {
  const fake = fakeHost(t, { namespaceRoot: true });
  fake.makeCgroup(join(fake.root, 'init'));
  fake.startIn('/init', [FAKE_PIDS[0]]);
  const manager = managerOn(fake);
  manager.ensureParent();
  assert.deepEqual(fake.treeWrites, [
    `${fake.root}/cgroup.subtree_control +memory +cpu +pids`,
    `${join(fake.root, 'brig')}/cgroup.subtree_control +memory +cpu +pids`,
  ]);
  assert.equal(fake.isMarked(join(fake.root, 'init')), false, "the entrypoint's leaf is not marked as Brig's");
});

test('controllers not delegated to the cgroup Brig runs in: a HostError that says what to configure, and nothing written', (t) => {
  const fake = fakeHost(t, { rootSubtreeControl: 'cpu io\n' });
  const svc = fake.startIn('/svc', [FAKE_PIDS[0]]);
  const manager = managerOn(fake);
  assert.throws(
    () => manager.ensureParent(),
    (err: unknown) => {
      assert.ok(err instanceof HostError);
      assert.equal(err.code, 'cgroup_not_delegated');
      assert.ok(err.message.includes(`${svc}, is not given the memory, pids controller(s)`), err.message);
      assert.match(err.message, /Delegate=yes/);
      assert.match(err.message, /its own cgroup namespace/);
      return true;
    },
  );
  assert.deepEqual(fake.treeWrites, []);
  assert.deepEqual(fake.pids(svc), [FAKE_SELF_PID, FAKE_PIDS[0]]);
  assert.equal(fs.existsSync(join(svc, 'init')), false);
  assert.equal(fs.existsSync(join(svc, 'brig')), false);

  const checks = checksByName(manager);
  assert.equal(checks.get('controller memory')?.ok, false);
  assert.equal(checks.get('controller memory')?.fix, DELEGATION_FIX);
  assert.equal(checks.get('controller cpu')?.ok, true);
  assert.equal(checks.get('parent')?.detail, `Brig builds in ${join(svc, 'brig')}: one slot-N cgroup per sandbox slot below it`);
});

test("a systemd unit's cgroup is Brig's only with systemd's delegate mark; controllers on offer are not enough", (t) => {
  const fake = fakeHost(t);
  fake.makeSlice(join(fake.root, 'system.slice'));
  const unit = fake.startIn('/system.slice/brig.service');
  fake.setXattr(unit, 'trusted.invocation_id', '0123456789abcdef0123456789abcdef');
  const manager = managerOn(fake);
  assert.throws(
    () => manager.ensureParent(),
    (err: unknown) => err instanceof HostError && err.code === 'cgroup_not_delegated' && /systemd unit's/.test(err.message),
  );
  assert.deepEqual(fake.treeWrites, []);
  assert.equal(checksByName(manager).get('delegation')?.ok, false);

  fake.setXattr(unit, 'trusted.delegate', '1');
  const delegated = managerOn(fake);
  delegated.ensureParent();
  assert.deepEqual(delegated.open('slot-0').dirs, [join(unit, 'brig', 'slot-0')]);
});

test('a parent that someone else made inside the delegated cgroup is refused before anything is moved', (t) => {
  const fake = fakeHost(t);
  const svc = fake.startIn('/svc');
  fake.makeCgroup(join(svc, 'brig'));
  const manager = managerOn(fake);
  assert.equal(checksByName(manager).get('parent')?.ok, false);
  assert.throws(() => manager.ensureParent(), { code: 'cgroup_parent_foreign' });
  assert.deepEqual(fake.treeWrites, []);
  assert.deepEqual(fake.pids(svc), [FAKE_SELF_PID]);
});

test('a cgroup merely named init, neither marked nor under a namespace root, is where Brig runs, not a leaf of its own', (t) => {
  const fake = fakeHost(t);
  fake.makeSlice(join(fake.root, 'other'));
  const dir = fake.startIn('/other/init');
  const manager = managerOn(fake);
  manager.ensureParent();
  assert.deepEqual(manager.open('slot-0').dirs, [join(dir, 'brig', 'slot-0')]);
  assert.deepEqual(fake.pids(join(dir, 'init')), [FAKE_SELF_PID]);
  assert.deepEqual(
    fake.treeWrites.filter((write) => !write.startsWith(`${dir}/`)),
    [],
    'the cgroup above is not written',
  );
});

test('/proc/self/cgroup paths are read relative to the mount, and one outside it is refused', (t) => {
  const fake = fakeHost(t);
  fake.makeSlice(join(fake.root, 'docker'));
  const sub = fake.startIn('/docker/abc');
  const mount = { mountPoint: sub, root: '/docker/abc', fsType: 'cgroup2' as const, superOptions: [] };
  const locate = (proc: string) => {
    fs.writeFileSync(fake.procCgroupPath, proc);
    return locateV2({ mount, parentName: 'brig', procCgroupPath: fake.procCgroupPath, dirOps: fake.dirOps });
  };
  assert.equal(locate('12:pids:/docker/abc\n0::/docker/abc\n').base, sub, 'a bind-mounted subtree: its root is the mount point');
  assert.equal(locate('0::/docker/abc\n').baseIsRoot, false);
  assert.throws(() => locate('0::/docker/other\n'), { code: 'cgroup_placement_unknown' });
  assert.throws(() => locate('0::/../outside\n'), { code: 'cgroup_placement_unknown' });
  assert.throws(() => locate('4:memory:/x\n'), { code: 'cgroup_placement_unknown' });
});

test('no v2 line in /proc/self/cgroup: ensureParent fails and doctor says why; the leaf name cannot be the parent name', (t) => {
  const fake = fakeHost(t);
  fs.writeFileSync(fake.procCgroupPath, '4:memory:/\n');
  const manager = managerOn(fake);
  assert.throws(() => manager.ensureParent(), { code: 'cgroup_placement_unknown' });
  const placement = checksByName(manager).get('placement');
  assert.equal(placement?.ok, false);
  assert.match(placement?.detail ?? '', /no cgroup v2 line/);
  assert.throws(() => managerOn(fake, 'init'), ConfigError);
});
