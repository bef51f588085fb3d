/**
 * Graceful close: the worker stops taking jobs, lets a short run finish,
 * hands a run still going at the end of the grace period back to the queue
 * (neither cancelled nor done), and another worker then runs it from the start.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job as QueueJob } from 'bullmq';
import { keys } from '../../../services/shared/contract.ts';
import { enqueue, leftoverCgroups, readRecord, waitForRecord, workerHarnessForFile } from './harness.ts';

const GRACE_MS = 1500;
/** What killing the aborted sandboxes and closing the connections may add to the grace period. */
const CLOSE_SLACK_MS = 3000;

const h = workerHarnessForFile('worker/shutdown');

test('close() finishes a short run, hands a long one back to the queue, and another worker finishes it', async () => {
  const first = await h.startWorker({ service: { shutdownGraceMs: GRACE_MS }, workerId: 'shutdown-first' });
  let closed = false;
  try {
    const short = await enqueue(h.clients.queue, h.clients.redis, {
      language: 'python',
      source: 'import time\ntime.sleep(0.6)\nprint("short")\n',
      limits: { wallMs: 10_000 },
    });
    const long = await enqueue(h.clients.queue, h.clients.redis, {
      language: 'python',
      source: 'import time\nprint("long-start", flush=True)\ntime.sleep(3)\nprint("long-done")\n',
      limits: { wallMs: 20_000 },
    });
    await Promise.all([h.clients.events.waitFor(short, 'compiled'), h.clients.events.waitFor(long, 'compiled')]);
    await sleep(200); // both programs are running in their sandboxes

    const closeStart = Date.now();
    await first.close();
    closed = true;
    const closeMs = Date.now() - closeStart;
    assert.ok(closeMs < GRACE_MS + CLOSE_SLACK_MS, `close took ${closeMs} ms`);
    assert.ok(closeMs >= GRACE_MS - 100, `close returned before the grace period (${closeMs} ms): it did not wait for the long run`);

    const shortRecord = (await readRecord(h.clients.redis, short))!;
    assert.equal(shortRecord.status, 'done', 'close() returned before the short run finished');
    assert.equal(shortRecord.verdict, 'ok');
    assert.equal(shortRecord.run?.stdout, 'short\n');

    const longRecord = (await readRecord(h.clients.redis, long))!;
    assert.equal(longRecord.status, 'queued', `a run stopped by shutdown must go back to queued, not ${longRecord.status}`);
    assert.equal(longRecord.verdict, null);
    assert.deepEqual(h.clients.events.types(long), ['started', 'compiled', 'requeued'], 'no cancelled or done event for a requeued run');
    const job = (await QueueJob.fromId(h.clients.queue, long))!;
    assert.equal(await job.getState(), 'waiting');
    assert.equal(job.attemptsMade, 0, "a shutdown must not spend one of the run's attempts");

    assert.equal(await h.clients.redis.exists(keys.worker('shutdown-first')), 0, 'the heartbeat outlived the worker');
    assert.deepEqual(leftoverCgroups(), [], "the closed worker's cgroups remain");
    await first.close(); // idempotent

    const second = await h.startWorker({ workerId: 'shutdown-second' });
    try {
      const finished = await waitForRecord(h.clients.redis, long, undefined, 20_000);
      assert.equal(finished.status, 'done');
      assert.equal(finished.verdict, 'ok');
      assert.equal(finished.run?.stdout, 'long-start\nlong-done\n', 'the second worker ran it from the start');
      await h.clients.events.waitFor(long, 'done');
      const starts = h.clients.events.byRun.get(long)!.filter((e) => e.type === 'started');
      assert.deepEqual(
        starts.map((e) => e.type === 'started' && e.workerId),
        ['shutdown-first', 'shutdown-second'],
      );
    } finally {
      await second.close();
    }
  } finally {
    if (!closed) await first.close();
  }
});

test('close() with nothing running returns promptly and removes the heartbeat', async () => {
  const worker = await h.startWorker({ service: { shutdownGraceMs: 30_000 }, workerId: 'shutdown-idle' });
  assert.equal(await h.clients.redis.exists(keys.worker('shutdown-idle')), 1);
  assert.equal(await h.clients.redis.sismember(keys.workers, 'shutdown-idle'), 1, 'the API finds workers by this set');
  const started = Date.now();
  await Promise.all([worker.close(), worker.close()]);
  assert.ok(Date.now() - started < 3000, `idle close took ${Date.now() - started} ms`);
  assert.equal(await h.clients.redis.exists(keys.worker('shutdown-idle')), 0);
  assert.equal(await h.clients.redis.sismember(keys.workers, 'shutdown-idle'), 0);
  await assert.rejects(fetch(worker.metricsUrl), 'the metrics server still listens');
});
