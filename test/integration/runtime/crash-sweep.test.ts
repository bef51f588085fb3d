import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/crash-sweep', { slots: 1 });
});
after(async () => {
  await rt?.close();
});

/**
 * A second Brig process on the same state dir and cgroup parent takes the
 * next slot, starts a sandbox that runs forever, and is killed with SIGKILL.
 */
async function crashAnotherRuntime(): Promise<void> {
  const script = `
    import { Runtime } from '${new URL('../../../runtime/runtime.ts', import.meta.url).pathname}';
    import { Submission } from '${new URL('../../../runtime/submission.ts', import.meta.url).pathname}';
    const runtime = await Runtime.create(JSON.parse(process.env.CONFIG));
    const job = await Submission.open(runtime, { language: 'bash', files: [{ name: 'main.sh', content: Buffer.from('sleep 1000') }], limits: { wallMs: 60000 } });
    job.run(Buffer.alloc(0));
    setTimeout(() => console.log('running'), 300);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, CONFIG: JSON.stringify({ ...rt.config, slots: 1 }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('running') && resolve());
    child.once('exit', (code) => reject(new Error(`the crashing runtime exited early with ${code}`)));
  });
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}

test('a slot left by a process killed with SIGKILL is swept: no cgroup, mount, process or run dir remains', async () => {
  await crashAnotherRuntime();
  const parent = rt.config.cgroupParent;
  const leftCgroups = () => readdirSync(`/sys/fs/cgroup/memory/${parent}`).filter((n) => n === 'slot-1');
  const leftMounts = () =>
    readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.includes(join(rt.stateDir, 'runs', 'slot-1')));
  assert.deepEqual(leftCgroups(), ['slot-1'], 'the crashed process should have left its cgroup (else this test proves nothing)');
  assert.equal(leftMounts().length, 1, 'the crashed process should have left its workspace mount');
  // The sandbox itself died with its launcher (parent-death signal).
  for (let i = 0; i < 50 && readFileSync(`/sys/fs/cgroup/pids/${parent}/slot-1/cgroup.procs`, 'utf8').trim(); i++) await sleep(20);
  assert.equal(
    readFileSync(`/sys/fs/cgroup/pids/${parent}/slot-1/cgroup.procs`, 'utf8').trim(),
    '',
    'sandbox processes outlived their launcher',
  );

  assert.deepEqual(await rt.runtime.sweepFreeSlots(), ['slot-1']);
  assert.deepEqual(leftCgroups(), []);
  assert.deepEqual(leftMounts(), []);
  assert.equal(existsSync(join(rt.stateDir, 'runs', 'slot-1')), false);
  // Our own slot is untouched and still works.
  assert.equal((await rt.run('python', 'print(6*7)')).run?.stdout, '42\n');
  assert.deepEqual(await rt.runtime.sweepFreeSlots(), []);
});
