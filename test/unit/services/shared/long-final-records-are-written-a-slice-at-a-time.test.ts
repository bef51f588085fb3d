/**
 * A final record holds the outputs, up to 16 MiB. Sent with one command,
 * ioredis copies it into one buffer and the socket takes it in one go,
 * holding the worker's event loop. RunStore.putFinal writes a long record a slice per
 * command under a key of its own, and the final script moves it in place:
 * the stored bytes, the lock check, the TTL and the 'done' signal must be
 * what one write gave. Against a real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { keys, RUN_EVENTS_CHANNEL, type RunRecord } from '../../../../services/shared/contract.ts';
import { createLogger } from '../../../../services/shared/logger.ts';
import { jsonOf } from '../../../../services/shared/record-json.ts';
import { closeRedis, createRedisClient, type Redis } from '../../../../services/shared/redis.ts';
import { RunStore, WRITE_SLICE_BYTES } from '../../../../services/shared/run-store.ts';
import { commandsSince, startRedis, type TestRedis } from '../../../helpers/redis.ts';

const TTL_SECONDS = 60;
const LOCK = { key: 'test:lock:r1', token: 'token-1' };
const logger = createLogger({ level: 'silent', name: 'test' });

let server: TestRedis;
let redis: Redis;
let subscriber: Redis;
const signals: string[] = [];

before(async () => {
  server = await startRedis();
  redis = createRedisClient(server.url, { name: 'test', logger });
  subscriber = createRedisClient(server.url, { name: 'test-subscriber', logger });
  subscriber.on('message', (_channel: string, message: string) => signals.push(message));
  await subscriber.subscribe(RUN_EVENTS_CHANNEL);
});

after(async () => {
  await closeRedis(subscriber);
  await closeRedis(redis);
  await server.stop();
});

beforeEach(async () => {
  await redis.del(keys.run('r1'));
  await redis.set(keys.run('r1'), '{"id":"r1","language":"python","status":"running"}');
  await redis.set(LOCK.key, LOCK.token);
  signals.length = 0;
});

function finalRecord(stdoutBytes: number): RunRecord {
  // Multi-byte characters across the slices' edges: slices are cut by bytes and must join as they were.
  const stdout = 'aé漢😀'.repeat(Math.ceil(stdoutBytes / 10)).slice(0, stdoutBytes);
  return { id: 'r1', language: 'python', status: 'done', verdict: 'ok', run: { stdout, stderr: '' } } as unknown as RunRecord;
}

const bytesOf = async (record: RunRecord) => Buffer.from(await jsonOf(record));
const stagedKeys = () => redis.keys('brig:run-staged:*');
const settle = () => new Promise((resolve) => setTimeout(resolve, 50)); // pub/sub delivery

test('a long final record goes a slice per command, and lands whole with its TTL and a done without it', async () => {
  const record = finalRecord(Math.floor(3.5 * WRITE_SLICE_BYTES));
  const expected = await bytesOf(record);
  await new RunStore(redis, TTL_SECONDS).putFinal(record, LOCK); // the scripts loaded
  await redis.set(keys.run('r1'), '{"id":"r1","language":"python","status":"running"}');
  await commandsSince(redis);
  signals.length = 0;

  assert.equal(await new RunStore(redis, TTL_SECONDS).putFinal(record, LOCK), true);

  const calls = await commandsSince(redis);
  assert.deepEqual(
    { set: calls.set, append: calls.append, rename: calls.rename, evalsha: calls.evalsha },
    { set: 1, append: Math.ceil(expected.length / WRITE_SLICE_BYTES) - 1, rename: 1, evalsha: 1 },
  );
  assert.ok((await redis.getBuffer(keys.run('r1')))?.equals(expected));
  const ttl = await redis.ttl(keys.run('r1'));
  assert.ok(ttl > 0 && ttl <= TTL_SECONDS, `TTL ${ttl}`);
  assert.deepEqual(await stagedKeys(), []);
  await settle();
  assert.deepEqual(signals, ['{"type":"done","id":"r1"}']);
});

test('a final record within one slice is one script, as before', async () => {
  const record = finalRecord(1000);
  await new RunStore(redis, TTL_SECONDS).putFinal(record, LOCK);
  await redis.set(keys.run('r1'), '{"id":"r1","language":"python","status":"running"}');
  await commandsSince(redis);

  assert.equal(await new RunStore(redis, TTL_SECONDS).putFinal(record, LOCK), true);

  const calls = await commandsSince(redis);
  assert.equal(calls.append, undefined);
  assert.equal(calls.rename, undefined);
  assert.equal(calls.evalsha, 1);
  assert.ok((await redis.getBuffer(keys.run('r1')))?.equals(await bytesOf(record)));
});

test('with the lock lost nothing lands, nothing is announced, and the slices are dropped', async () => {
  await redis.set(LOCK.key, 'another-worker');
  assert.equal(await new RunStore(redis, TTL_SECONDS).putFinal(finalRecord(2 * WRITE_SLICE_BYTES), LOCK), false);
  assert.equal(await redis.get(keys.run('r1')), '{"id":"r1","language":"python","status":"running"}');
  assert.deepEqual(await stagedKeys(), []);
  await settle();
  assert.deepEqual(signals, []);
});

test('slices that vanish before they are moved in place are written again', async () => {
  const record = finalRecord(2 * WRITE_SLICE_BYTES);
  const writer = redis.duplicate();
  const append = writer.append.bind(writer);
  let appends = 0;
  // The staged key gone between two slices, as an expiry or an eviction would make it.
  writer.append = (async (...args: Parameters<typeof append>) => {
    if (++appends === 1) await redis.del(args[0] as string);
    return append(...args);
  }) as typeof writer.append;
  try {
    assert.equal(await new RunStore(writer, TTL_SECONDS).putFinal(record, LOCK), true);
    assert.ok((await redis.getBuffer(keys.run('r1')))?.equals(await bytesOf(record)));
    assert.ok(appends >= 4, `${appends} appends: the slices were written twice`);
    assert.deepEqual(await stagedKeys(), []);
  } finally {
    await closeRedis(writer);
  }
});
