/**
 * The kernel paths of a prepared (warm) sandbox on cgroup v2, each proven on
 * the VM's kernels rather than assumed from their man pages:
 *
 * - init is born in its slot's cgroup: clone3 with CLONE_INTO_CGROUP, not a
 *   clone and then a write to cgroup.procs (launcher.c, clone_sandbox). Both
 *   end in the same cgroup, so the proof is the kernel's trace: moving a task
 *   into a cgroup (a cgroup.procs write, the fallback) fires the
 *   cgroup:cgroup_attach_task tracepoint, and a task born into its cgroup
 *   never does. A process moved by hand shows first that the trace sees a
 *   write.
 * - the tmpfs mounts are made at the slot's default disk size while the
 *   sandbox is prepared, and a step that asks for another size gets it at go
 *   with fspick and fsconfig (launcher.c, resize_tmpfs).
 * - the workspace arrives at go as a detached mount: the runtime clones it
 *   with open_tree (OPEN_TREE_CLONE) in the host's mount namespace and sends
 *   it to init, which moves it into place with move_mount (launcher.c,
 *   place_box).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { childProcessesNamed, waitingInits } from '../integration/runtime/host-state.ts';
import { explain } from '../integration/runtime/probes.ts';
import { CGROUP_MOUNT, NOT_IN_VM, ownCgroupPath, v2Of } from './vm.ts';

const TRACEFS = '/sys/kernel/tracing';
const ATTACH_EVENT = 'events/cgroup/cgroup_attach_task/enable';
const POLL_MS = 20;
/** Preparing a sandbox under TCG takes a second or two. */
const PREPARE_POLLS = 500;

let rt: TestRuntime;
/** A trace instance of this file's own: its ring buffer and event switches leave the global ones alone. */
let instance: string;
let slot: string;

before(async () => {
  if (NOT_IN_VM) return;
  // A cgroup namespace's mount namespace (the namespace placement) starts without tracefs.
  if (!existsSync(join(TRACEFS, 'instances'))) execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS]);
  instance = join(TRACEFS, 'instances', `brig-vm-${process.pid}`);
  mkdirSync(instance);
  writeFileSync(join(instance, ATTACH_EVENT), '1');
  // Traced from before the runtime exists: its first prepared sandbox's init is born with the trace on.
  rt = await startTestRuntime('../vm/prepared-sandbox', { slots: 1 });
  slot = join(v2Of(rt.runtime).placement().parent, 'slot-0');
});
after(async () => {
  await rt?.close();
  if (instance && existsSync(instance)) {
    writeFileSync(join(instance, ATTACH_EVENT), '0');
    rmdirSync(instance);
  }
});

interface Attach {
  pid: number;
  comm: string;
  dstPath: string;
}

/** The migrations traced so far: "cgroup_attach_task: dst_root=0 dst_id=N dst_level=N dst_path=P pid=N comm=C". */
function attaches(): Attach[] {
  return readFileSync(join(instance, 'trace'), 'utf8')
    .split('\n')
    .map((line) => /cgroup_attach_task: .*dst_path=(\S+) pid=(\d+) comm=(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ dstPath: match[1]!, pid: Number(match[2]), comm: match[3]!.trim() }));
}

/** The inits of prepared sandboxes waiting now (once there is one), each checked to be in the slot's cgroup. */
async function preparedInits(): Promise<number[]> {
  for (let i = 0; i < PREPARE_POLLS && waitingInits().size === 0; i++) await sleep(POLL_MS);
  const inits = [...waitingInits()];
  assert.ok(inits.length > 0, 'no prepared sandbox waits in the slot (else this test proves nothing)');
  // As this process's cgroup namespace shows it, like /proc/<pid>/cgroup.
  const slotPath = `/${slot.slice(CGROUP_MOUNT.length + 1)}`;
  for (const init of inits) assert.equal(ownCgroupPath(init), slotPath, `the prepared init ${init} is not in ${slot}`);
  return inits;
}

test('a process moved by a write to cgroup.procs shows in the trace (the trace sees the fallback)', { skip: NOT_IN_VM }, async () => {
  const scratch = join(v2Of(rt.runtime).placement().base, `brig-vm-trace-${process.pid}`);
  mkdirSync(scratch);
  let sleeper: ChildProcess | undefined;
  try {
    sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    writeFileSync(join(scratch, 'cgroup.procs'), String(pid));
    const moved = attaches().filter((event) => event.pid === pid);
    assert.equal(
      moved.length,
      1,
      `the move of pid ${pid} into ${scratch} was traced ${moved.length} times:\n${JSON.stringify(attaches())}`,
    );
    assert.ok(moved[0]!.dstPath.endsWith(`/brig-vm-trace-${process.pid}`), `traced into ${moved[0]!.dstPath}`);
  } finally {
    const gone = sleeper && new Promise((resolve) => sleeper!.once('exit', resolve));
    sleeper?.kill('SIGKILL');
    await gone;
    rmdirSync(scratch);
  }
});

test("each sandbox's init is born in its slot's cgroup (clone3 CLONE_INTO_CGROUP): never migrated there", { skip: NOT_IN_VM }, async () => {
  // The sandbox prepared as the runtime started (the step takes it), and the next one, prepared after the step.
  const inits = new Set(await preparedInits());
  const result = await rt.run('bash', 'echo ran');
  assert.equal(result.run?.stdout, 'ran\n', explain(result.run));
  for (const init of await preparedInits()) inits.add(init);
  assert.ok(inits.size >= 2, `only init ${[...inits].join(', ')} was seen: the step's sandbox and the next one should differ`);
  // Its parent is elsewhere: a child that merely inherited its parent's cgroup would be there unplaced.
  const launchers = childProcessesNamed(process.pid, 'brig-launcher');
  assert.ok(launchers.length > 0, 'no launcher of this process is left to compare with');
  for (const launcher of launchers) assert.equal(ownCgroupPath(launcher), ownCgroupPath(), `launcher ${launcher} is not in Brig's cgroup`);

  const events = attaches();
  const initsMoved = events.filter((event) => inits.has(event.pid));
  assert.deepEqual(initsMoved, [], 'an init was moved into its cgroup after its birth: the launcher fell back to writing cgroup.procs');
  const launchersMoved = events.filter((event) => event.comm === 'brig-launcher');
  assert.deepEqual(launchersMoved, [], 'a launcher or an init was moved between cgroups');
});

test("each step's tmpfs mounts get the step's size at go (fspick, fsconfig), and its workspace is at /box (open_tree, move_mount)", {
  skip: NOT_IN_VM,
}, async () => {
  const source = [
    'import os',
    "for path in ['/', '/tmp', '/dev/shm', '/box']:",
    '    s = os.statvfs(path)',
    '    print(path, s.f_blocks * s.f_frsize // (1 << 20))',
    "print('box', ' '.join(sorted(os.listdir('/box'))))",
  ].join('\n');
  // Smaller than the default, the default (made so, no resize), larger.
  for (const diskMb of [8, rt.config.defaults.diskMb, 24]) {
    const result = await rt.run('python', source, { limits: { diskMb, memoryMb: 128, cpuMs: 5000, wallMs: 20000 } });
    const r = result.run;
    assert.ok(r, 'no run step');
    assert.equal(r.verdict, 'ok', explain(r));
    for (const path of ['/', '/tmp', '/dev/shm', '/box']) {
      assert.match(r.stdout, new RegExp(`^${path} ${diskMb}$`, 'm'), `${path} is not ${diskMb} MiB (diskMb):\n${explain(r)}`);
    }
    assert.match(r.stdout, /^box main\.py$/m, `the workspace is not at /box:\n${explain(r)}`);
  }
});
