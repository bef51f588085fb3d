/**
 * Admission through real HTTP and a real Redis: the cap on a client's runs
 * queued or running, who counts as a client (key, address, /64, a trusted
 * proxy's X-Forwarded-For), job priorities, and the Redis memory a run may
 * reserve, with its refusals (429, 503 store_full) and what they promise:
 * no run already accepted is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { admitRun, releaseRun, reservedBytes } from '../../../services/shared/admission.ts';
import { EVENTS_MAX_LEN, keys, type RunRecord } from '../../../services/shared/contract.ts';
import { type ApiHarness, judgeEverythingOk, PYTHON_HELLO, redisServerForFile, startHarness } from './harness.ts';

const redisServer = redisServerForFile();

interface ErrorBody {
  error: { code: string; message: string; field: string | null };
}

/** INFO is read at most every 250 ms (store-room.ts): wait that out between memory changes and the check. */
const STORE_READING_MS = 300;

async function post(h: ApiHarness, headers: Record<string, string> = {}, body: unknown = PYTHON_HELLO) {
  const res = await h.fetch('/v1/runs', { json: body, headers });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { id: string } & Partial<ErrorBody>,
  };
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("a cap on each client's active runs", () => {
  let h: ApiHarness;
  before(async () => {
    h = await startHarness(redisServer, { apiKeys: 'alpha,beta', clientMaxActiveRuns: 2, rateLimitPerMinute: 0 });
    await h.heartbeat();
  });
  after(() => h?.close());

  test('past the cap a key gets 429 too_many_active_runs with Retry-After; another key is not held back', async () => {
    const alpha = { authorization: 'Bearer alpha' };
    const first = await post(h, alpha);
    const second = await post(h, alpha);
    assert.deepEqual([first.status, second.status], [202, 202]);
    const third = await post(h, alpha);
    assert.equal(third.status, 429);
    assert.equal(third.body.error?.code, 'too_many_active_runs');
    assert.ok(Number(third.retryAfter) >= 1);
    assert.equal(await h.redis.exists(keys.run(third.body.error ? 'none' : third.body.id)), 0);
    const beta = await post(h, { 'x-auth-token': 'beta' });
    assert.equal(beta.status, 202, 'beta has its own share');

    // Priorities: a client's first run goes before another client's second.
    const priority = async (id: string) => (await h.queue.getJob(id))!.opts.priority;
    assert.deepEqual([await priority(first.body.id), await priority(second.body.id), await priority(beta.body.id)], [1, 2, 1]);

    // A run that ends gives its place back: cancelled while queued...
    assert.equal((await h.fetch(`/v1/runs/${first.body.id}`, { method: 'DELETE', headers: alpha })).status, 202);
    assert.equal((await post(h, alpha)).status, 202);
    assert.equal((await post(h, alpha)).status, 429);
    // ...or finished by a worker.
    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds));
    try {
      await until(
        'the queue to drain',
        async () =>
          (await h.queue.getJobCounts('prioritized', 'active')).prioritized === 0 && (await h.redis.hlen(keys.reservations)) === 0,
      );
    } finally {
      await worker.close();
    }
    assert.equal((await post(h, alpha)).status, 202);
    assert.equal((await post(h, alpha)).status, 202);
    assert.equal((await post(h, alpha)).status, 429);
  });
});

describe('who a client is without a key', () => {
  test('the peer address, and X-Forwarded-For only from a proxy BRIG_TRUST_PROXY trusts; IPv6 counts by /64', async () => {
    const untrusting = await startHarness(redisServer, { clientMaxActiveRuns: 1, rateLimitPerMinute: 0 });
    try {
      await untrusting.heartbeat();
      assert.equal((await post(untrusting, { 'x-forwarded-for': '198.51.100.1' })).status, 202);
      const spoofed = await post(untrusting, { 'x-forwarded-for': '198.51.100.2' });
      assert.equal(spoofed.status, 429, 'a forged X-Forwarded-For does not make a new client');
    } finally {
      await untrusting.close();
    }
    const behindProxy = await startHarness(redisServer, { clientMaxActiveRuns: 1, rateLimitPerMinute: 0, trustProxy: 'loopback' });
    try {
      await behindProxy.heartbeat();
      const from = (address: string) => post(behindProxy, { 'x-forwarded-for': address });
      assert.equal((await from('198.51.100.1')).status, 202);
      assert.equal((await from('198.51.100.2')).status, 202, 'another client behind the proxy');
      assert.equal((await from('198.51.100.1')).status, 429);
      assert.equal((await from('2001:db8:1:2::a')).status, 202);
      assert.equal((await from('2001:db8:1:2::b')).status, 429, 'the same /64');
      assert.equal((await from('2001:db8:1:3::a')).status, 202, 'another /64');
    } finally {
      await behindProxy.close();
    }
  });
});

describe('Redis memory', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startHarness(redisServer, { rateLimitPerMinute: 0, clientMaxActiveRuns: 100 });
    await h.heartbeat();
  });
  after(async () => {
    await h.redis.config('SET', 'maxmemory', '0');
    await h?.close();
  });

  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await h.redis.info('memory'))![1]);

  test('a run whose worst case does not fit is refused with 503 store_full; the runs accepted before all finish; /readyz says why', async () => {
    // Room for one default run's worst case (about 2 MiB: 1 MiB of output, as JSON at most twice), not for two.
    const roomBytes = 3 * 1024 * 1024;
    await h.redis.config('SET', 'maxmemory', String(Math.ceil(((await usedMemory()) + roomBytes) / 0.9)));
    await sleep(STORE_READING_MS);
    const accepted = await post(h);
    assert.equal(accepted.status, 202);
    const refused = await post(h);
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error?.code, 'store_full');
    assert.ok(Number(refused.retryAfter) >= 1);
    const ready = (await (await h.fetch('/readyz')).json()) as { status: string; redis: string; reasons: string[] };
    assert.equal(ready.redis, 'full');
    assert.equal(ready.status, 'not_ready');
    assert.match(ready.reasons.join(' '), /redis is full/);

    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds));
    try {
      await until('the accepted run to finish', async () => (await h.store.get(accepted.body.id))?.status === 'done');
    } finally {
      await worker.close();
      await h.redis.config('SET', 'maxmemory', '0');
    }
    assert.equal(await h.redis.hlen(keys.reservations), 0, 'its reservation was given back with the final record');
    await sleep(STORE_READING_MS);
    assert.equal((await post(h)).status, 202, 'room again');
  });

  test('a write Redis refuses for memory (OOM) is 503 store_full, never 500', async () => {
    const { id } = (await post(h)).body;
    await h.redis.config('SET', 'maxmemory', '1');
    try {
      const cancel = await h.fetch(`/v1/runs/${id}`, { method: 'DELETE' });
      assert.equal(cancel.status, 503);
      assert.equal(((await cancel.json()) as ErrorBody).error.code, 'store_full');
      await sleep(STORE_READING_MS);
      const refused = await post(h);
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error?.code, 'store_full');
      assert.equal((await h.fetch(`/v1/runs/${id}`)).status, 200, 'reads still work');
    } finally {
      await h.redis.config('SET', 'maxmemory', '0');
    }
    assert.equal(((await (await h.fetch(`/v1/runs/${id}`)).json()) as RunRecord).status, 'queued', 'the accepted run is still there');
  });

  test("BullMQ's event stream is kept short: the queue says so to every producer of events", async () => {
    assert.equal((await h.queue.getMeta()).maxLenEvents, EVENTS_MAX_LEN);
  });
});

describe("the reservations' sum", () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(redisServer.url);
  });
  after(() => redis.disconnect());

  const MiB = 1024 * 1024;
  let next = 0;
  const admitOne = (bytes: number, staleAt = Date.now() + 3_600_000) => {
    const id = `sum-${next++}`;
    return admitRun(redis, {
      record: { id, language: 'python', status: 'queued', verdict: null, compile: null, createdAt: Date.now() },
      ttlSeconds: 60,
      backlog: { lists: [], sortedSets: [], capacity: 1_000 },
      client: 'sum-test',
      bytes,
      clientCap: 1_000,
      roomBytes: 1_000 * MiB,
      now: Date.now(),
      staleAt,
    }).then((admission) => {
      assert.equal(admission.admitted, true);
      return id;
    });
  };
  const sumOfHash = async () => (await redis.hvals(keys.reservations)).reduce((sum, entry) => sum + Number.parseInt(entry, 10), 0);
  const hvalsCalls = async () => Number(/cmdstat_hvals:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  const clear = () =>
    redis.del(keys.reservations, keys.reservationExpiry, keys.reservedTotal, keys.reservedRecount, keys.clientRuns('sum-test'));

  test('follows every admission, release and stale entry, and an admission reads no more than the sum: it costs the same however many runs are admitted', async () => {
    await clear();
    const first = await admitOne(3 * MiB);
    const hvalsBefore = await hvalsCalls();
    const ids = [first];
    for (let i = 0; i < 20; i++) ids.push(await admitOne(MiB + i));
    assert.equal(await hvalsCalls(), hvalsBefore, 'no admission summed the hash');
    assert.equal(await reservedBytes(redis), await sumOfHash());
    await releaseRun(redis, first);
    await releaseRun(redis, first); // idempotent
    assert.equal(await reservedBytes(redis), await sumOfHash());
    // An entry gone stale is dropped, and its bytes with it, by the next admission.
    const stale = await admitOne(5 * MiB, Date.now() - 1);
    assert.equal(await redis.hexists(keys.reservations, stale), 1);
    await admitOne(MiB);
    assert.equal(await redis.hexists(keys.reservations, stale), 0);
    assert.equal(await reservedBytes(redis), await sumOfHash());
    for (const id of ids) await releaseRun(redis, id);
    assert.equal(await reservedBytes(redis), await sumOfHash());
  });

  test('a sum deleted by hand, below zero, or not zero beside an empty hash is counted again from the hash', async () => {
    await clear();
    await admitOne(2 * MiB);
    await redis.del(keys.reservedTotal);
    await admitOne(MiB);
    assert.equal(await reservedBytes(redis), 3 * MiB);
    await redis.set(keys.reservedTotal, '-5');
    await admitOne(MiB);
    assert.equal(await reservedBytes(redis), 4 * MiB);
    await redis.del(keys.reservations);
    await admitOne(MiB);
    assert.equal(await reservedBytes(redis), MiB, 'only the run admitted since the hash went');
  });

  test('a sum gone wrong while the hash is not empty (an older process beside newer ones) is counted again within a minute', async () => {
    await clear();
    await admitOne(2 * MiB);
    const ttl = await redis.ttl(keys.reservedRecount);
    assert.ok(ttl > 0 && ttl <= 60, `the next recount is due within a minute (ttl ${ttl} s)`);
    await redis.incrby(keys.reservedTotal, 100 * MiB);
    await admitOne(MiB);
    assert.equal(await reservedBytes(redis), 103 * MiB, 'trusted until the recount is due');
    await redis.del(keys.reservedRecount); // as its TTL would
    await admitOne(MiB);
    assert.equal(await reservedBytes(redis), 4 * MiB);
  });

  test('a full Redis still gives a run its share back, the sum included', async () => {
    await clear();
    const id = await admitOne(2 * MiB);
    await redis.config('SET', 'maxmemory', '1');
    try {
      await releaseRun(redis, id);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    assert.equal(await redis.hlen(keys.reservations), 0);
    assert.equal(await reservedBytes(redis), 0);
  });
});
