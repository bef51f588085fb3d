/**
 * A worker killed with SIGKILL mid-run loses no run: its lock expires, the
 * stalled check of another worker puts the job back in the queue, and that
 * worker runs it from the start. The dead worker's slots (cgroups, workspace
 * mounts) are swept by the next worker on the machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../../runtime/runtime.ts';
import type { WorkerTiming } from '../../../services/worker/worker.ts';
import { CGROUP_PARENT, enqueue, waitForRecord, workerHarnessForFile } from './harness.ts';

/** Short locks so that the test does not wait 30 s for a dead worker's lock to expire. */
const FAST_STALL: Partial<WorkerTiming> = { lockDurationMs: 2000, stalledIntervalMs: 500 };
const READY_TIMEOUT_MS = 30_000;

const h = workerHarnessForFile('worker/crash');

/** Starts a worker in a child process on our state dir and cgroup parent; resolves with a kill -9 for it. */
async function startDoomedWorker(): Promise<() => Promise<void>> {
  const options = {
    runtimeConfig: h.runtimeConfig(),
    serviceConfig: h.serviceConfig(),
    redisUrl: h.redis.url,
    workerId: 'doomed',
    timing: FAST_STALL,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./crashing-worker.ts', import.meta.url).pathname], {
    env: { ...process.env, BRIG_TEST_WORKER: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the doomed worker did not get ready')), READY_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the doomed worker exited early with ${code}`)));
  });
  return async () => {
    child.kill('SIGKILL');
    await exited;
  };
}

const slotCgroupNames = () => {
  const dir = join('/sys/fs/cgroup/memory', CGROUP_PARENT);
  return existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
};
const workspaceMounts = () =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(join(h.stateDir, 'runs')));

test('a run on a worker killed with SIGKILL is picked up by another worker and run from the start; the dead slots are swept', async () => {
  // Hold slots 0 and 1 so that the doomed worker takes 2 and 3: the next worker
  // will then find them in the state dir as a dead worker's, not lease them itself.
  const placeholder = await Runtime.create(h.runtimeConfig());
  let kill: (() => Promise<void>) | null = null;
  try {
    kill = await startDoomedWorker();
  } finally {
    await placeholder.close();
  }

  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'python',
    source: 'import time\nprint("begin", flush=True)\ntime.sleep(2)\nprint("end")\n',
    limits: { wallMs: 20_000 },
  });
  await h.clients.events.waitFor(id, 'compiled');
  await sleep(300); // the program is running in the doomed worker's sandbox
  await kill();
  assert.ok(
    slotCgroupNames().some((n) => n === 'slot-2' || n === 'slot-3'),
    `the dead worker should have left its slot cgroups (got ${slotCgroupNames()})`,
  );
  assert.equal(workspaceMounts().length, 1, 'the dead worker should have left its workspace mount');
  assert.equal((await waitForRecord(h.clients.redis, id, () => true)).status, 'running');

  const rescuer = await h.startWorker({ timing: FAST_STALL, workerId: 'rescuer' });
  try {
    assert.deepEqual(slotCgroupNames(), ['slot-0', 'slot-1'], "the start sweep left the dead worker's cgroups");
    assert.deepEqual(workspaceMounts(), [], "the start sweep left the dead worker's workspace mount");

    const record = await waitForRecord(h.clients.redis, id, undefined, 20_000);
    assert.equal(record.status, 'done');
    assert.equal(record.verdict, 'ok');
    assert.equal(record.run?.stdout, 'begin\nend\n');
    await h.clients.events.waitFor(id, 'done');
    const starts = h.clients.events.byRun.get(id)!.filter((e) => e.type === 'started');
    assert.deepEqual(
      starts.map((e) => e.type === 'started' && e.workerId),
      ['doomed', 'rescuer'],
    );
  } finally {
    await rescuer.close();
  }
});
