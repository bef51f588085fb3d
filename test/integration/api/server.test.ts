import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startApi } from '../../../services/api/server.ts';
import { loadServiceConfig } from '../../../services/shared/config.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { freePort } from '../../helpers/redis.ts';
import { PYTHON_HELLO, readEvents, redisServerForFile, startHarness } from './harness.ts';
import { codeOf, rawRequest } from './raw-http.ts';

const redisServer = redisServerForFile();
const silent = createLogger({ level: 'silent', name: 'test' });

test('close() is idempotent and the port stops accepting', async () => {
  const h = await startHarness(redisServer);
  const first = h.api.close();
  const second = h.api.close();
  assert.equal(first, second, 'the same close');
  await first;
  await assert.rejects(fetch(`${h.url}/healthz`));
  await h.close(); // and once more through the harness
});

test('closing answers waiting requests at once and ends event streams', async () => {
  const h = await startHarness(redisServer, { waitTimeoutMs: 30_000, shutdownGraceMs: 10_000 });
  try {
    await h.heartbeat();
    const { id } = (await (await h.fetch('/v1/runs', { json: PYTHON_HELLO })).json()) as { id: string };
    const stream = await h.fetch(`/v1/runs/${id}/events`);
    const waiting = h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the wait is under way
    const started = Date.now();
    await h.api.close();
    assert.ok(Date.now() - started < 2_000, 'no wait for the grace period');
    const answer = await waiting;
    assert.equal(answer.status, 202);
    assert.equal(((await answer.json()) as { status: string }).status, 'queued');
    assert.deepEqual(
      (await readEvents(stream)).map((e) => e.type),
      ['queued'],
    );
  } finally {
    await h.close();
  }
});

test('a request still in flight after the grace period is dropped, and close() completes', async () => {
  const h = await startHarness(redisServer, { shutdownGraceMs: 300 });
  try {
    const { port } = new URL(h.url);
    // A body that never finishes: the request stays in flight.
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"lang');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await h.api.close();
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 3_000, `close took ${took} ms`);
    await closed;
  } finally {
    await h.close();
  }
});

test('startApi refuses to start without REDIS_URL, or when Redis does not answer', async () => {
  await assert.rejects(startApi({ config: loadServiceConfig({}, { port: 0 }), logger: silent }), { code: 'redis_url_missing' });
  const nobody = `redis://127.0.0.1:${await freePort()}`;
  await assert.rejects(startApi({ config: loadServiceConfig({}, { port: 0, redisUrl: nobody }), logger: silent }), {
    code: 'redis_unreachable',
  });
});

test('an API reachable from other machines without keys refuses to start, unless anonymous access is meant', async () => {
  const config = (env: Record<string, string>) => loadServiceConfig({ REDIS_URL: redisServer.url, PORT: '0', LOG_LEVEL: 'silent', ...env });
  assert.equal(config({}).host, '127.0.0.1', 'loopback by default');
  await assert.rejects(startApi({ config: config({ HOST: '0.0.0.0' }), logger: silent }), {
    name: 'ConfigError',
    code: 'api_exposed_without_keys',
    message: /BRIG_API_KEYS.*BRIG_ALLOW_ANONYMOUS=1/,
  });
  await assert.rejects(startApi({ config: config({ HOST: '::' }), logger: silent }), { code: 'api_exposed_without_keys' });
  for (const env of [
    { HOST: '0.0.0.0', BRIG_API_KEYS: 'k' },
    { HOST: '0.0.0.0', BRIG_ALLOW_ANONYMOUS: '1' },
    { HOST: '127.0.0.1' },
    { HOST: '::1' },
  ] as Record<string, string>[]) {
    const api = await startApi({ config: config(env), logger: silent });
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200, JSON.stringify(env));
    await api.close();
  }
});

test('a client that stops halfway through its body gets 408 request_timeout once BRIG_REQUEST_TIMEOUT_MS is up, and its connection is closed', async () => {
  const timeoutMs = 400;
  const h = await startHarness(redisServer, { requestTimeoutMs: timeoutMs });
  try {
    const head = 'POST /v1/runs HTTP/1.1\r\nHost: brig\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"language":';
    const started = Date.now();
    const answer = await rawRequest(h.port, head, { timeoutMs: 10_000 });
    const elapsedMs = Date.now() - started;
    assert.equal(answer.status, 408, answer.body);
    assert.equal(codeOf(answer.body), 'request_timeout');
    assert.equal(answer.closed, true, 'the connection stays open');
    // Node looks for late requests every timeoutMs / 2.
    assert.ok(elapsedMs >= timeoutMs && elapsedMs < timeoutMs * 4, `answered after ${elapsedMs} ms`);
  } finally {
    await h.close();
  }
});
