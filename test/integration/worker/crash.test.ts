/**
 * A worker killed with SIGKILL mid-run loses no run: its lock expires, the
 * stalled check of another worker puts the job back in the queue, and that
 * worker runs it from the start. The dead worker's slots (cgroups, workspace
 * mounts) are swept by the next worker on the machine.
 *
 * A worker that lost its lock without dying (cut off from Redis for longer
 * than the lock, as in e2e/several-hosts) writes nothing more of the run:
 * the new owner's record survives, and its admission stays for the new
 * owner to give back. The tests play the hand-over as BullMQ's stalled
 * check and the new owner would leave it: the lock key holding another
 * token, and the new owner's running record.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Runtime } from '../../../runtime/runtime.ts';
import { keys, type RunRecord } from '../../../services/shared/contract.ts';
import type { Logger } from '../../../services/shared/logger.ts';
import type { WorkerTiming } from '../../../services/worker/worker.ts';
import { CGROUP_PARENT, enqueue, readRecord, waitForRecord, workerHarnessForFile } from './harness.ts';

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

/** A pino logger whose lines are kept, parsed, for the test to read. */
function keptLogger(): { logger: Logger; lines: { level: number; msg: string; runId?: string; at?: string }[] } {
  const lines: { level: number; msg: string; runId?: string; at?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const PINO_WARN = 40;
const PINO_ERROR = 50;

/** The run's admission as the API's leaves it (admission.ts), so that it can be seen to stay. */
async function admitted(id: string): Promise<void> {
  const staleAt = Date.now() + 600_000;
  await h.clients.redis
    .multi()
    .zadd(keys.clientRuns('test'), staleAt, id)
    .hset(keys.reservations, id, '1000 test')
    .zadd(keys.reservationExpiry, staleAt, id)
    .exec();
}

/**
 * What the worker finds once the link is back: BullMQ's stalled check gave
 * the job to another worker, whose token is in the lock and whose running
 * record is the newer one. The lock key is checked to be BullMQ's before
 * it is taken over: held, by a token of this worker's BullMQ id.
 */
async function handOver(id: string): Promise<RunRecord> {
  const lockKey = `${h.clients.queue.qualifiedName}:${id}:lock`;
  const held = await h.clients.redis.get(lockKey);
  assert.match(held ?? '', /^[0-9a-f-]{36}:\d+$/, `BullMQ's lock of the job, at ${lockKey}`);
  await h.clients.redis.set(lockKey, 'the-new-owners-token', 'PX', 60_000);
  const current = (await readRecord(h.clients.redis, id))!;
  const newer: RunRecord = { ...current, status: 'running', startedAt: Date.now(), progress: { workerId: 'new-owner', tests: [] } };
  await h.clients.redis.set(keys.run(id), JSON.stringify(newer), 'EX', 600);
  return newer;
}

async function lockLostLine(lines: ReturnType<typeof keptLogger>['lines'], id: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = lines.filter((l) => l.runId === id && l.msg.startsWith('job lock lost'));
    if (found.length > 0) return found;
    if (Date.now() > deadline) throw new Error(`no lost-lock line for ${id} in ${timeoutMs} ms: ${JSON.stringify(lines.slice(-10))}`);
    await sleep(50);
  }
}

/** After the lost lock: one warning, no error, the new owner's record as it was, the admission still held. */
async function assertDropped(lines: ReturnType<typeof keptLogger>['lines'], id: string, newer: RunRecord, at: string): Promise<void> {
  const lost = await lockLostLine(lines, id);
  await sleep(500); // anything the worker would still write, it has written by now
  assert.equal(lost.length, 1, 'logged once');
  assert.equal(lost[0]!.level, PINO_WARN);
  assert.equal(lost[0]!.at, at);
  assert.deepEqual(
    lines.filter((l) => l.level >= PINO_ERROR),
    [],
    'a lost lock is no error',
  );
  assert.deepEqual(await readRecord(h.clients.redis, id), newer, "the new owner's record is untouched");
  assert.notEqual(await h.clients.redis.hget(keys.reservations, id), null, 'the admission stays for the new owner to release');
  assert.ok(!h.clients.events.types(id).includes('done'), 'the job is not completed by the worker that lost it');
}

test("a worker that lost its job's lock while the run ran does not write its final record over the new owner's", async () => {
  const { logger, lines } = keptLogger();
  const worker = await h.startWorker({ logger, workerId: 'cut-off' });
  try {
    const id = await enqueue(h.clients.queue, h.clients.redis, {
      language: 'python',
      source: 'import time\ntime.sleep(1.5)\nprint("late")\n',
      limits: { wallMs: 10_000 },
    });
    await admitted(id);
    await waitForRecord(h.clients.redis, id, (r) => r.status === 'running');
    const newer = await handOver(id);
    await assertDropped(lines, id, newer, 'final record');
  } finally {
    await worker.close();
  }
});

test("a worker that lost its job's lock stops at its next progress write, and writes nothing over the new owner's record", async () => {
  const { logger, lines } = keptLogger();
  const worker = await h.startWorker({ logger, workerId: 'cut-off' });
  try {
    const id = await enqueue(h.clients.queue, h.clients.redis, {
      language: 'python',
      source: 'import time\ntime.sleep(float(input()))\n',
      tests: [
        { name: 'slow', stdin: '1.5', expected: '' },
        { name: 'never run', stdin: '0', expected: '' },
      ],
      limits: { wallMs: 10_000 },
    });
    await admitted(id);
    await waitForRecord(h.clients.redis, id, (r) => r.status === 'running');
    const newer = await handOver(id);
    await assertDropped(lines, id, newer, 'running record');
    assert.ok(!h.clients.events.types(id).includes('test'), 'no test event from the worker that lost the run');
  } finally {
    await worker.close();
  }
});

test('a worker whose lock renewal finds the lock gone aborts the run at once and writes nothing more', async () => {
  const { logger, lines } = keptLogger();
  // Renewed every quarter of a second: the loss is found long before the program ends.
  const worker = await h.startWorker({ logger, workerId: 'cut-off', timing: { lockDurationMs: 1_000, stalledIntervalMs: 30_000 } });
  try {
    const id = await enqueue(h.clients.queue, h.clients.redis, {
      language: 'python',
      source: 'import time\ntime.sleep(20)\n',
      limits: { wallMs: 30_000 },
    });
    await admitted(id);
    await waitForRecord(h.clients.redis, id, (r) => r.status === 'running');
    const newer = await handOver(id);
    const start = Date.now();
    await assertDropped(lines, id, newer, 'lock renewal');
    assert.ok(Date.now() - start < 10_000, 'the sandbox was stopped, not waited for');
  } finally {
    await worker.close();
  }
});
