/**
 * What `brig doctor` says when Brig runs in a cgroup that was not delegated
 * to it, inside whichever placement the VM runs this in: a cgroup whose
 * parent hands it no controllers, a systemd unit's cgroup without
 * Delegate=yes, and a container-style cgroup namespace over a cgroup without
 * controllers. Each time doctor fails (exit 1), names what is missing and
 * what to configure, and writes nothing. doctor-root.test.ts covers the root
 * with nothing enabled.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setXattr } from '../../runtime/system/libc.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { uidBase } from '../helpers/uid-bases.ts';
import { BRIG, cgroupDirs, NOT_IN_VM, readList, V2_CONTROLLERS, v2Of } from './vm.ts';

const DOCTOR_TIMEOUT_MS = 120_000;
/** The part of DELEGATION_FIX (runtime/cgroups/v2/delegation.ts) a reader acts on. */
const DELEGATE_FIX = /fix: delegate a cgroup to Brig: in a systemd service, Delegate=yes/;

let rt: TestRuntime;
/** Scratch cgroups of this file, in the cgroup the placement gave Brig. */
let scratch: string;
let stateDir: string;
before(async () => {
  if (NOT_IN_VM) return;
  // A runtime takes the placement's cgroup into use first, so that it hands controllers down as Brig leaves it.
  rt = await startTestRuntime('../vm/doctor', { slots: 1 });
  scratch = join(v2Of(rt.runtime).placement().base, `brig-vm-doctor-${process.pid}`);
  mkdirSync(scratch);
  // The scratch cgroup hands every controller on, so each case's parent decides alone what its child gets.
  writeFileSync(join(scratch, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' '));
  stateDir = mkdtempSync(join(tmpdir(), 'brig-vm-doctor-'));
  chmodSync(stateDir, 0o711); // mkdtemp's 0700 would fail doctor's state-dir check besides the one each case is about
});
after(async () => {
  if (scratch && existsSync(scratch)) for (const dir of cgroupDirs(scratch).reverse()) rmdirSync(dir);
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  await rt?.close();
});

/** `brig doctor` started inside `cgroup`, optionally in a cgroup namespace of its own with cgroup2 mounted again (as a container). */
function doctorIn(cgroup: string, opts: { namespace?: boolean } = {}) {
  const doctor = `exec "${process.execPath}" "${BRIG}" doctor`;
  const inner = opts.namespace
    ? `exec unshare --cgroup --mount --propagation private sh -c 'umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && ${doctor}'`
    : doctor;
  const result = spawnSync('sh', ['-c', `echo $$ > "$0/cgroup.procs" && ${inner}`, cgroup], {
    encoding: 'utf8',
    timeout: DOCTOR_TIMEOUT_MS,
    env: {
      ...process.env,
      BRIG_STATE_DIR: join(stateDir, 'state'),
      BRIG_CGROUP_PARENT: `brig-test-${process.pid}-doctor`,
      BRIG_UID_BASE: String(uidBase('../vm/doctor')),
    },
  });
  // A doctor killed by a signal has no exit code: say which, with whatever it printed.
  const ended = result.signal ? `\n(doctor ended by ${result.signal})` : '';
  return { code: result.status, out: `${result.stdout}${result.stderr}${ended}` };
}

/** A cgroup under the scratch one whose parent hands it `controllers`. */
function cgroupWith(name: string, controllers: readonly string[]): string {
  const parent = join(scratch, `${name}-parent`);
  mkdirSync(parent);
  if (controllers.length > 0) writeFileSync(join(parent, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
  const dir = join(parent, name);
  mkdirSync(dir);
  return dir;
}

/** Nothing was made below the cgroup and nothing enabled in it: doctor only looked. */
function assertUntouched(dir: string, out: string): void {
  assert.deepEqual(cgroupDirs(dir), [dir], `doctor created cgroups in ${dir}:\n${out}`);
  assert.deepEqual(readList(join(dir, 'cgroup.subtree_control')), [], `doctor enabled controllers in ${dir}:\n${out}`);
}

test('in a cgroup its parent hands no controllers, doctor names each missing one and says to delegate, and exits 1', {
  skip: NOT_IN_VM,
}, () => {
  const app = cgroupWith('app', []);
  const r = doctorIn(app);
  assert.equal(r.code, 1, r.out);
  for (const controller of V2_CONTROLLERS) {
    assert.match(
      r.out,
      new RegExp(`^FAIL +cgroups: controller ${controller}: not delegated to ${app} \\(missing from ${app}/cgroup\\.controllers\\)`, 'm'),
    );
  }
  assert.match(r.out, DELEGATE_FIX);
  assertUntouched(app, r.out);
});

test("in a systemd unit's cgroup without Delegate=yes, doctor says the cgroup is systemd's, and exits 1", { skip: NOT_IN_VM }, () => {
  const unit = cgroupWith('nodelegate.service', V2_CONTROLLERS);
  // What systemd leaves on every unit's cgroup; a unit with Delegate=yes would also get trusted.delegate=1.
  setXattr(unit, 'trusted.invocation_id', Buffer.from('0123456789abcdef0123456789abcdef'));
  const r = doctorIn(unit);
  assert.equal(r.code, 1, r.out);
  for (const controller of V2_CONTROLLERS)
    assert.match(r.out, new RegExp(`^ok +cgroups: controller ${controller}: delegated to ${unit}`, 'm'));
  assert.match(
    r.out,
    new RegExp(`^FAIL +cgroups: delegation: the cgroup Brig runs in, ${unit}, is a systemd unit's without delegation`, 'm'),
  );
  assert.match(r.out, DELEGATE_FIX);
  const failLine = /^FAIL +cgroups: delegation: .*$/m.exec(r.out)?.[0] ?? '';
  assert.doesNotMatch(failLine, /To fix/, 'the FAIL line repeats the fix that doctor prints on its own line');
  assertUntouched(unit, r.out);
});

test('in a cgroup namespace over a cgroup without controllers, doctor says its cgroup2 mount lacks them, and exits 1', {
  skip: NOT_IN_VM,
}, () => {
  const container = cgroupWith('container', []);
  const r = doctorIn(container, { namespace: true });
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /^FAIL +cgroups: no usable cgroup hierarchy \(cgroup2 at \/sys\/fs\/cgroup lacks the memory, cpu, pids controller\(s\), which were not delegated to the cgroup it shows/m,
  );
  assertUntouched(container, r.out);
});
