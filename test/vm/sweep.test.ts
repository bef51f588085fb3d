/**
 * Cleanup on cgroup v2: a Brig process killed with SIGKILL mid-run leaves
 * its slot's cgroup and workspace behind, and the next sweep on the same
 * state dir removes them; a runtime that closes removes its slots and its
 * parent. crash-sweep.test.ts and clean-stop-sweep.test.ts check the same
 * on v1, through v1's paths.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { launcherRunningAProgram } from '../integration/runtime/host-state.ts';
import { cgroupDirsNamed, NOT_IN_VM, readList, v2Of } from './vm.ts';

const RUNTIME_URL = new URL('../../runtime/runtime.ts', import.meta.url).pathname;
const SUBMISSION_URL = new URL('../../runtime/submission.ts', import.meta.url).pathname;
const POLL_MS = 20;
/** Building a sandbox under TCG takes a second or two. */
const SANDBOX_START_POLLS = 1500;
const EMPTY_POLLS = 100;

let rt: TestRuntime;
let parent: string;
before(async () => {
  if (NOT_IN_VM) return;
  rt = await startTestRuntime('../vm/sweep', { slots: 1 });
  parent = v2Of(rt.runtime).placement().parent;
});
after(async () => {
  await rt?.close();
});

/**
 * A second Brig process on the same state dir takes the next slot, starts a
 * sandbox that sleeps, and is killed with SIGKILL while its program runs
 * (not while its slot's next sandbox merely waits, prepared ahead).
 */
async function crashAnotherRuntime(): Promise<void> {
  const script = `
    import { Runtime } from '${RUNTIME_URL}';
    import { Submission } from '${SUBMISSION_URL}';
    const runtime = await Runtime.create(JSON.parse(process.env.CONFIG));
    const job = await Submission.open(runtime, { language: 'bash', files: [{ name: 'main.sh', content: Buffer.from('sleep 1000') }], limits: { wallMs: runtime.config.maxima.wallMs } });
    job.run(Buffer.alloc(0));
    console.log('started');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, CONFIG: JSON.stringify({ ...rt.config, slots: 1 }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit code ${code}`)));
  await Promise.race([
    new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve())),
    exited.then((how) => {
      throw new Error(`the runtime to be killed ended early (${how})`);
    }),
  ]);
  for (let i = 0; i < SANDBOX_START_POLLS && launcherRunningAProgram(child.pid!) === undefined; i++) await sleep(POLL_MS);
  assert.ok(launcherRunningAProgram(child.pid!), 'the second runtime never ran its program (else this test proves nothing)');
  child.kill('SIGKILL');
  await exited;
}

const workspaceMounts = (slot: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(join(rt.stateDir, 'runs', slot)));

test('a slot left by a Brig process killed with SIGKILL is swept: no cgroup, process, mount or run dir remains', {
  skip: NOT_IN_VM,
}, async () => {
  await crashAnotherRuntime();
  const left = join(parent, 'slot-1');
  assert.ok(existsSync(left), `the killed process should have left ${left} (else this test proves nothing)`);
  assert.equal(workspaceMounts('slot-1').length, 1, 'the killed process should have left its workspace mount');
  // The sandbox dies with its launcher (parent-death signal); the cgroup stays until a sweep.
  for (let i = 0; i < EMPTY_POLLS && readList(join(left, 'cgroup.procs')).length > 0; i++) await sleep(POLL_MS);
  assert.deepEqual(readList(join(left, 'cgroup.procs')), [], 'sandbox processes outlived their launcher');

  assert.deepEqual(await rt.runtime.sweepFreeSlots(), ['slot-1']);
  assert.equal(existsSync(left), false, `${left} was not removed`);
  assert.deepEqual(workspaceMounts('slot-1'), []);
  assert.equal(existsSync(join(rt.stateDir, 'runs', 'slot-1')), false);
  assert.equal((await rt.run('python', 'print(6*7)')).run?.stdout, '42\n', 'our own slot no longer works');
  assert.deepEqual(await rt.runtime.sweepFreeSlots(), []);
});

test('a runtime that closes removes its slot cgroups and its parent: nothing named after it is left in the tree', {
  skip: NOT_IN_VM,
}, async () => {
  assert.ok(existsSync(join(parent, 'slot-0')), 'the runtime should have a slot cgroup (else this test proves nothing)');
  await rt.runtime.close();
  assert.equal(existsSync(parent), false, `${parent} is left after close`);
  assert.deepEqual(cgroupDirsNamed(rt.config.cgroupParent), []);
});
