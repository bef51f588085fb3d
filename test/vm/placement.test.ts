/**
 * Where Brig builds on cgroup v2, in each placement the VM runs it in
 * (scripts/vm/guest/run.sh): its parent goes inside the cgroup it was given
 * (the root; a service's delegated cgroup; a container's namespace root) and
 * nowhere else, its own processes leave a non-root base for the `init` leaf
 * (v2 lets no process stay in a cgroup that hands controllers down), and
 * `brig doctor` says where it builds. outside-untouched.test.ts checks from
 * outside the placement that nothing else was written.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hostChecks } from '../../cli/doctor/checks.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { CGROUP_MOUNT, cgroupDirsNamed, GIVEN_CGROUP, NOT_IN_VM, ownCgroupPath, PLACEMENT, readList, V2_CONTROLLERS, v2Of } from './vm.ts';

let rt: TestRuntime;
before(async () => {
  if (NOT_IN_VM) return;
  rt = await startTestRuntime('../vm/placement', { slots: 1 });
  assert.equal((await rt.run('bash', 'echo built')).run?.stdout, 'built\n');
});
after(async () => {
  await rt?.close();
});

const expectedParent = () => join(GIVEN_CGROUP, rt.config.cgroupParent);

test('the parent and its slot are built inside the cgroup the placement gave Brig, and nowhere else', { skip: NOT_IN_VM }, () => {
  assert.deepEqual(cgroupDirsNamed(rt.config.cgroupParent), [expectedParent()]);
  assert.equal(v2Of(rt.runtime).placement().parent, expectedParent());
  assert.deepEqual(cgroupDirsNamed('slot-0'), [join(expectedParent(), 'slot-0')]);
  assert.deepEqual(readList(join(expectedParent(), 'cgroup.subtree_control')).sort(), [...V2_CONTROLLERS].sort());
});

test("Brig's processes stay at the root, or leave a delegated base for its init leaf", { skip: NOT_IN_VM }, () => {
  const base = v2Of(rt.runtime).placement().base;
  assert.equal(base, GIVEN_CGROUP);
  if (PLACEMENT === 'root') {
    assert.equal(ownCgroupPath(), '/');
    return;
  }
  // The test process (and the shell that started it) moved there: the whole service, not Brig alone.
  const leaf = join(GIVEN_CGROUP, 'init');
  assert.equal(join(CGROUP_MOUNT, ownCgroupPath()), leaf);
  assert.equal(join(CGROUP_MOUNT, ownCgroupPath(process.ppid)), leaf, 'the process that started this one was left in the base');
  assert.deepEqual(readList(join(GIVEN_CGROUP, 'cgroup.procs')), [], `${GIVEN_CGROUP} still holds processes`);
  assert.deepEqual(readList(join(GIVEN_CGROUP, 'cgroup.subtree_control')).sort(), [...V2_CONTROLLERS].sort());
});

test('brig doctor says where Brig runs and where it builds', { skip: NOT_IN_VM }, () => {
  const checks = hostChecks(rt.config);
  const failed = checks.filter((check) => !check.ok);
  assert.deepEqual(failed, [], 'a doctor check failed');
  const detail = (name: string) => checks.find((check) => check.name === `cgroups: ${name}`)?.detail ?? `(no ${name} check)`;
  assert.equal(detail('parent'), `Brig builds in ${expectedParent()} (exists, made by Brig): one slot-N cgroup per sandbox slot below it`);
  const where =
    PLACEMENT === 'root'
      ? `Brig runs in the root cgroup ${CGROUP_MOUNT}, which is exempt from the no-internal-process rule`
      : `Brig runs in ${join(GIVEN_CGROUP, 'init')}, the leaf of its service's processes; it builds in ${GIVEN_CGROUP}`;
  assert.equal(detail('placement'), where);
});
