import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ApiHarness, PYTHON_HELLO, redisServerForFile, startHarness } from './harness.ts';

const redisServer = redisServerForFile();

/** The limit counts in fixed minutes: a test that straddles a minute would see its counter reset. */
async function awayFromWindowEdge(): Promise<void> {
  const msLeft = 60_000 - (Date.now() % 60_000);
  if (msLeft < 3_000) await new Promise((resolve) => setTimeout(resolve, msLeft + 50));
}

interface ErrorBody {
  error: { code: string; message: string; field: string | null };
}

describe('API keys', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startHarness(redisServer, { apiKeys: 'key-one, key-two', rateLimitPerMinute: 0 });
    await h.heartbeat();
  });
  after(() => h?.close());

  test('no key → 401 unauthorized with WWW-Authenticate', async () => {
    const res = await h.fetch('/v1/languages');
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'unauthorized');
    assert.match(body.error.message, /Authorization: Bearer <key> or X-Auth-Token/);
  });

  test('a wrong key → 401, in either header', async () => {
    for (const headers of [
      { authorization: 'Bearer key-three' },
      { 'x-auth-token': 'key-on' },
      { authorization: 'Basic a2V5LW9uZQ==' },
      { authorization: 'Bearer' },
    ] as Record<string, string>[]) {
      const res = await h.fetch('/v1/languages', { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(((await res.json()) as ErrorBody).error.code, 'unauthorized');
    }
  });

  test('a valid key works as Authorization: Bearer and as X-Auth-Token', async () => {
    for (const headers of [
      { authorization: 'Bearer key-one' },
      { authorization: 'bearer key-two' },
      { 'x-auth-token': 'key-two' },
    ] as Record<string, string>[]) {
      const res = await h.fetch('/v1/languages', { headers });
      assert.equal(res.status, 200, JSON.stringify(headers));
    }
  });

  test('a refused key queues nothing, even with a valid body', async () => {
    const res = await h.fetch('/v1/runs', { json: PYTHON_HELLO, headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    assert.deepEqual(await h.redis.keys('brig:run:*'), []);
    const accepted = await h.fetch('/v1/runs', { json: PYTHON_HELLO, headers: { authorization: 'Bearer key-one' } });
    assert.equal(accepted.status, 202);
  });

  test('every /v1 route needs the key; probes, metrics and the document do not', async () => {
    for (const [method, path] of [
      ['GET', '/v1/runs/x'],
      ['DELETE', '/v1/runs/x'],
      ['GET', '/v1/runs/x/events'],
      ['POST', '/v1/runs'],
    ]) {
      const res = await h.fetch(path!, { method });
      assert.equal(res.status, 401, `${method} ${path}`);
    }
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      const res = await h.fetch(path);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
  });
});

describe('rate limit', () => {
  test('per key: past the limit → 429 with Retry-After; another key has its own budget', async () => {
    const h = await startHarness(redisServer, { apiKeys: 'key-one,key-two', rateLimitPerMinute: 3 });
    try {
      await awayFromWindowEdge();
      const asOne = { headers: { authorization: 'Bearer key-one' } };
      for (let i = 0; i < 3; i++) {
        const res = await h.fetch('/v1/languages', asOne);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-ratelimit-remaining'), String(2 - i));
      }
      const limited = await h.fetch('/v1/languages', asOne);
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      const body = (await limited.json()) as ErrorBody;
      assert.equal(body.error.code, 'rate_limited');
      assert.match(body.error.message, /3 requests per minute for this API key/);
      const other = await h.fetch('/v1/languages', { headers: { 'x-auth-token': 'key-two' } });
      assert.equal(other.status, 200);
      // The counter lives in Redis under a digest of the key, never the key itself.
      const counters = await h.redis.keys('brig:rate:*');
      assert.equal(counters.length, 2);
      assert.ok(counters.every((k) => !k.includes('key-one') && !k.includes('key-two')));
    } finally {
      await h.close();
    }
  });

  test('per address when the API has no keys; probes are not counted', async () => {
    const h = await startHarness(redisServer, { rateLimitPerMinute: 2 });
    try {
      await awayFromWindowEdge();
      assert.equal((await h.fetch('/v1/languages')).status, 200);
      assert.equal((await h.fetch('/healthz')).status, 200);
      assert.equal((await h.fetch('/v1/languages')).status, 200);
      const limited = await h.fetch('/v1/languages');
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      assert.match(((await limited.json()) as ErrorBody).error.message, /for this address/);
    } finally {
      await h.close();
    }
  });

  test('0 means unlimited', async () => {
    const h = await startHarness(redisServer, { rateLimitPerMinute: 0 });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await h.fetch('/v1/languages')).status, 200);
      assert.deepEqual(await h.redis.keys('brig:rate:*'), []);
    } finally {
      await h.close();
    }
  });
});
