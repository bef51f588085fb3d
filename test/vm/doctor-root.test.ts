/**
 * Brig in the root cgroup of a freshly booted kernel, where nothing is
 * enabled for children yet (no systemd here to do it). The root is the
 * host's: Brig does not write its cgroup.subtree_control, so `brig doctor`
 * fails and names the one command that fixes it, and `brig run` refuses to
 * start (exit 3) with the same command. scripts/vm/guest/run.sh runs this
 * first, before it enables the controllers for the root placement.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { uidBase } from '../helpers/uid-bases.ts';
import { BRIG, CGROUP_MOUNT, cgroupDirs, ownCgroupPath, PLACEMENT, readList } from './vm.ts';

const SKIP = PLACEMENT === 'root-unprepared' ? false : 'runs in the VM of npm run test:vm, at the root before anything is enabled there';
const COMMAND_TIMEOUT_MS = 120_000;
const ENABLE_COMMAND = `echo "+memory +cpu +pids" > ${CGROUP_MOUNT}/cgroup.subtree_control`;

const work = mkdtempSync(join(tmpdir(), 'brig-vm-doctor-root-'));
// mkdtemp makes it 0700; sandboxes (other host uids) must pass through it to the state dir, or brig refuses to start for that first.
chmodSync(work, 0o711);
after(() => rmSync(work, { recursive: true, force: true }));

function brig(args: string[]) {
  const result = spawnSync(process.execPath, [BRIG, ...args], {
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
    env: {
      ...process.env,
      BRIG_STATE_DIR: join(work, 'state'),
      BRIG_CGROUP_PARENT: `brig-test-${process.pid}`,
      BRIG_UID_BASE: String(uidBase('../vm/doctor-root')),
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertRootUntouched(output: string): void {
  assert.deepEqual(readList(join(CGROUP_MOUNT, 'cgroup.subtree_control')), [], `the root's controllers were enabled:\n${output}`);
  assert.deepEqual(cgroupDirs(), [CGROUP_MOUNT], `a cgroup was created:\n${output}`);
}

test('at the root with nothing enabled for children, doctor fails and names the one command, writing nothing', { skip: SKIP }, () => {
  assert.equal(ownCgroupPath(), '/', 'this test must run in the root cgroup');
  const r = brig(['doctor']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok +cgroups: placement: Brig runs in the root cgroup \/sys\/fs\/cgroup/m);
  assert.match(
    r.stdout,
    /^FAIL +cgroups: controllers for children: memory, cpu, pids not enabled in \/sys\/fs\/cgroup\/cgroup\.subtree_control: the root cgroup is the host's, and Brig does not write it/m,
  );
  assert.ok(r.stdout.includes(`fix: as root: ${ENABLE_COMMAND}`), r.stdout);
  assertRootUntouched(r.stdout);
});

test('brig run refuses to start there with exit 3 and the same command, writing nothing', { skip: SKIP }, () => {
  const source = join(work, 'hello.py');
  writeFileSync(source, 'print("hello")\n');
  const r = brig(['run', source]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.ok(r.stderr.includes(ENABLE_COMMAND), r.stderr);
  assertRootUntouched(r.stderr);
});
