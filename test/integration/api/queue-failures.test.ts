/**
 * The API's one reader of BullMQ's event stream (services/api/runs/queue-failures.ts):
 * it hears the jobs BullMQ failed and nothing else, reads a quiet stream in
 * batches (not one XREAD per entry), keeps up with a busy one, and stops at
 * once while a read is blocked.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { QueueFailures } from '../../../services/api/runs/queue-failures.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const STREAM = 'test:events';
/** The reader's pace on a quiet stream: at most one read per this long (its MIN_READ_INTERVAL_MS). */
const READ_INTERVAL_MS = 250;

let server: TestRedis;
let redis: Redis;
before(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
after(async () => {
  await redis.quit();
  await server.stop();
});

const xreadCalls = async () => Number(/cmdstat_xread:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);

test('only failed entries are heard, entries from before the start are not, and a quiet stream is read in batches', async () => {
  await redis.xadd(STREAM, '*', 'event', 'failed', 'jobId', 'before-start', 'failedReason', 'old');
  const failures = new QueueFailures(server.url, STREAM, createLogger({ level: 'silent', name: 'test' }));
  const heard: [string, string][] = [];
  failures.onFailed((jobId, reason) => heard.push([jobId, reason]));
  await failures.start();
  try {
    const readsBefore = await xreadCalls();
    const startedAt = Date.now();
    // About 200 entries a second for a second: each would have been an XREAD of its own.
    for (let i = 0; i < 200; i++) {
      await redis.xadd(STREAM, '*', 'event', i % 50 === 7 ? 'failed' : 'completed', 'jobId', `job-${i}`, 'failedReason', `reason ${i}`);
      await sleep(5);
    }
    await sleep(2 * READ_INTERVAL_MS);
    const seconds = (Date.now() - startedAt) / 1000;
    assert.deepEqual(heard, [
      ['job-7', 'reason 7'],
      ['job-57', 'reason 57'],
      ['job-107', 'reason 107'],
      ['job-157', 'reason 157'],
    ]);
    const reads = (await xreadCalls()) - readsBefore;
    assert.ok(reads <= Math.ceil((seconds * 1000) / READ_INTERVAL_MS) + 2, `${reads} XREADs in ${seconds} s`);
  } finally {
    await failures.close();
  }
});

test('a busy stream is read as fast as it fills, and close() does not wait for a blocked read', async () => {
  const failures = new QueueFailures(server.url, STREAM, createLogger({ level: 'silent', name: 'test' }));
  const heard: string[] = [];
  failures.onFailed((jobId) => heard.push(jobId));
  await failures.start();
  // Three batches' worth at once: read back to back, not one batch per interval.
  const pipeline = redis.pipeline();
  for (let i = 0; i < 1_500; i++) pipeline.xadd(STREAM, '*', 'event', 'failed', 'jobId', `busy-${i}`);
  await pipeline.exec();
  // One batch per interval would take three intervals; back to back, the first read (which
  // may have woken for the first entry alone) and its pause, then the rest at once.
  const startedAt = Date.now();
  while (heard.length < 1_500 && Date.now() < startedAt + 5_000) await sleep(5);
  assert.equal(heard.length, 1_500);
  const ms = Date.now() - startedAt;
  assert.ok(ms < 2 * READ_INTERVAL_MS, `the batches were read back to back, not one per interval (${ms} ms)`);
  await sleep(50); // the reader is blocked in XREAD now
  const closing = Date.now();
  await failures.close();
  assert.ok(Date.now() - closing < 1_500, `close() took ${Date.now() - closing} ms`);
});
