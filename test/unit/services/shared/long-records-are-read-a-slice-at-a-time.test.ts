/**
 * A final record holds the outputs, up to 16 MiB. Read back with one GET,
 * ioredis gathers the reply and copies it whole in one go, holding the
 * event loop (~10 ms for 15 MiB); RunStore.getBytes reads a long record in
 * slices instead (GETRANGE), one round trip each, and must still give back
 * exactly the stored bytes. Against a real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { keys } from '../../../../services/shared/contract.ts';
import { createLogger } from '../../../../services/shared/logger.ts';
import { closeRedis, createRedisClient, type Redis } from '../../../../services/shared/redis.ts';
import { READ_SLICE_BYTES, RunStore } from '../../../../services/shared/run-store.ts';
import { commandsSince, startRedis, type TestRedis } from '../../../helpers/redis.ts';

let server: TestRedis;
let redis: Redis;
let store: RunStore;

before(async () => {
  server = await startRedis();
  redis = createRedisClient(server.url, { name: 'test', logger: createLogger({ level: 'silent', name: 'test' }) });
  store = new RunStore(redis, 60);
});

after(async () => {
  await closeRedis(redis);
  await server.stop();
});

function record(status: string, stdoutBytes: number): string {
  // Multi-byte characters across the slices' edges: slices are cut by bytes and must join as they were.
  const stdout = 'aé漢😀'.repeat(Math.ceil(stdoutBytes / 10)).slice(0, stdoutBytes);
  return JSON.stringify({ id: 'r1', language: 'python', status, verdict: 'ok', run: { stdout, stderr: '' } });
}

test('a long final record comes back byte for byte, one slice per round trip', async () => {
  const stored = record('done', Math.floor(3.5 * READ_SLICE_BYTES));
  const bytes = Buffer.from(stored);
  await redis.set(keys.run('r1'), stored);
  await commandsSince(redis);
  const read = await store.getBytes('r1');
  assert.ok(read?.equals(bytes));
  assert.deepEqual(await commandsSince(redis), { getrange: Math.ceil(bytes.length / READ_SLICE_BYTES), strlen: 1 });
});

test('a record within one slice, or exactly one slice long, takes one GETRANGE, as GET would', async () => {
  for (const stored of ['{"id":"r1","language":"python","status":"queued"}', 'x'.repeat(READ_SLICE_BYTES - 1)]) {
    await redis.set(keys.run('r1'), stored);
    await commandsSince(redis);
    assert.equal((await store.getBytes('r1'))?.toString(), stored);
    assert.deepEqual(await commandsSince(redis), { getrange: 1 });
  }
  const exact = 'x'.repeat(READ_SLICE_BYTES);
  await redis.set(keys.run('r1'), exact);
  assert.equal((await store.getBytes('r1'))?.toString(), exact);
});

test('a missing record is null', async () => {
  assert.equal(await store.getBytes('nothing-here'), null);
});

test('a long record that is not final, or not laid out as Brig writes records, is read whole: it may change between slices', async () => {
  for (const stored of [record('running', 2 * READ_SLICE_BYTES), `{"status":"done",${record('done', 2 * READ_SLICE_BYTES).slice(1)}`]) {
    await redis.set(keys.run('r1'), stored);
    await commandsSince(redis);
    assert.ok((await store.getBytes('r1'))?.equals(Buffer.from(stored)));
    assert.deepEqual(await commandsSince(redis), { getrange: 1, get: 1 });
  }
});

test('a long record that expires while it is read is gone, not cut short', async () => {
  await redis.set(keys.run('r1'), record('done', 3 * READ_SLICE_BYTES));
  const reader = redis.duplicate();
  const getrange = reader.getrangeBuffer.bind(reader);
  let slices = 0;
  // The record's TTL running out between two slices, made to happen: the real
  // command, then the key deleted as an expiry would.
  reader.getrangeBuffer = (async (...args: Parameters<typeof getrange>) => {
    const slice = await getrange(...args);
    if (++slices === 2) await redis.del(keys.run('r1'));
    return slice;
  }) as typeof reader.getrangeBuffer;
  try {
    assert.equal(await new RunStore(reader, 60).getBytes('r1'), null);
    assert.equal(slices, 3);
  } finally {
    await closeRedis(reader);
  }
});
