/**
 * The API reads the live workers about once a second (and at every
 * /readyz). It used to SCAN for keys.worker(*), which walks the whole
 * keyspace, the stored runs with it: with 100,000 records that was 500
 * round trips and ~47 ms of Redis's one thread a read (a probe), growing
 * with the results kept. Now the workers' ids are kept in a set beside their
 * heartbeats (worker-registry.ts). Against a real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { LiveWorkers } from '../../../../services/api/workers/live-workers.ts';
import { HEARTBEAT_TTL_MS, keys, type WorkerHeartbeat } from '../../../../services/shared/contract.ts';
import { createLogger } from '../../../../services/shared/logger.ts';
import { closeRedis, createRedisClient, type Redis } from '../../../../services/shared/redis.ts';
import { publishHeartbeat, readHeartbeats, withdrawHeartbeat } from '../../../../services/shared/worker-registry.ts';
import { commandsSince, startRedis, type TestRedis } from '../../../helpers/redis.ts';

const STORED_RUNS = 20_000;
const logger = createLogger({ level: 'silent', name: 'test' });

let server: TestRedis;
let redis: Redis;

before(async () => {
  server = await startRedis();
  redis = createRedisClient(server.url, { name: 'test', logger });
});

after(async () => {
  await closeRedis(redis);
  await server.stop();
});

beforeEach(async () => {
  await redis.flushall();
  await redis.config('SET', 'maxmemory', '0');
});

function heartbeat(workerId: string): WorkerHeartbeat {
  const now = Date.now();
  return { workerId, hostname: 'h', pid: 1, slots: 2, activeRuns: 0, languages: [], startedAt: now, at: now };
}

async function storeRuns(count: number): Promise<void> {
  for (let at = 0; at < count; at += 1_000) {
    const batch = redis.pipeline();
    for (let i = at; i < Math.min(at + 1_000, count); i++) batch.set(keys.run(`run-${i}`), '{"status":"done"}');
    await batch.exec();
  }
}

const workerIds = async (live: LiveWorkers) => (await live.heartbeats()).map((h) => h.workerId);

test('the live workers are read with one script whatever the number of stored runs', async () => {
  await storeRuns(STORED_RUNS);
  for (const id of ['w1', 'w2', 'w3']) await publishHeartbeat(redis, heartbeat(id), HEARTBEAT_TTL_MS);
  await readHeartbeats(redis); // the script loaded (its first call is a NOSCRIPT, then an EVAL)
  await commandsSince(redis);

  assert.deepEqual(await workerIds(new LiveWorkers(redis, logger)), ['w1', 'w2', 'w3']);

  const calls = await commandsSince(redis);
  assert.equal(calls.scan, undefined, 'a SCAN walks the stored runs');
  assert.equal(calls.keys, undefined);
  assert.equal((calls.evalsha ?? 0) + (calls.eval ?? 0), 1, JSON.stringify(calls));
  assert.deepEqual({ smembers: calls.smembers, get: calls.get }, { smembers: 1, get: 3 });
});

test('a worker whose heartbeat expired is dropped from the set by the next read', async () => {
  await publishHeartbeat(redis, heartbeat('alive'), HEARTBEAT_TTL_MS);
  await publishHeartbeat(redis, heartbeat('dying'), 50);
  await new Promise((resolve) => setTimeout(resolve, 100));

  assert.deepEqual(await workerIds(new LiveWorkers(redis, logger)), ['alive']);
  assert.deepEqual(await redis.smembers(keys.workers), ['alive']);

  // It comes back (an event loop stuck past the TTL): its next heartbeat puts it back.
  await publishHeartbeat(redis, heartbeat('dying'), HEARTBEAT_TTL_MS);
  assert.deepEqual(await workerIds(new LiveWorkers(redis, logger)), ['alive', 'dying']);
});

test('a withdrawn worker is gone at once, heartbeat and id', async () => {
  await publishHeartbeat(redis, heartbeat('leaving'), HEARTBEAT_TTL_MS);
  await withdrawHeartbeat(redis, 'leaving');
  assert.equal(await redis.exists(keys.worker('leaving')), 0);
  assert.equal(await redis.scard(keys.workers), 0);
  assert.deepEqual(await readHeartbeats(redis), []);
});

test('a full Redis still lists the workers, and still drops the dead ones', async () => {
  await publishHeartbeat(redis, heartbeat('alive'), HEARTBEAT_TTL_MS);
  await publishHeartbeat(redis, heartbeat('dead'), HEARTBEAT_TTL_MS);
  await redis.del(keys.worker('dead'));
  await redis.config('SET', 'maxmemory', '1');

  await assert.rejects(publishHeartbeat(redis, heartbeat('new'), HEARTBEAT_TTL_MS), /OOM/);
  assert.deepEqual(await workerIds(new LiveWorkers(redis, logger)), ['alive']);
  assert.deepEqual(await redis.smembers(keys.workers), ['alive']);
});
