/**
 * Redis goes away under a running API and a `brig worker` process, then
 * comes back on the same port: every answer meanwhile is a quick 503
 * store_unavailable with Retry-After (never a 500, never Redis's own words),
 * each process logs the outage once per connection rather than once per
 * retry, nothing prints unstructured ioredis noise, and runs work again
 * once Redis is back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { type RunningApi, startApi } from '../../../services/api/server.ts';
import { loadServiceConfig } from '../../../services/shared/config.ts';
import { type PrivateRedis, startPrivateRedis } from '../../../services/shared/redis-server.ts';
import { uidBase } from '../../helpers/uid-bases.ts';

const BRIG = new URL('../../../bin/brig.js', import.meta.url).pathname;
const OUTAGE_MS = 3_000;
/** A request during the outage must be answered within this, not hang on reconnects. */
const ANSWER_WITHIN_MS = 2_500;

let redisDir: string;
let stateDir: string;
let redis: PrivateRedis;
let api: RunningApi;
const apiLines: string[] = [];
let worker: ReturnType<typeof spawn>;
let workerOut = '';
let workerErr = '';
const env: Record<string, string> = {};

before(async () => {
  redisDir = mkdtempSync(join(tmpdir(), 'brig-test-outage-redis-'));
  stateDir = mkdtempSync(join(tmpdir(), 'brig-test-outage-'));
  chmodSync(stateDir, 0o711);
  redis = await startPrivateRedis(redisDir, { tcp: true });
  Object.assign(env, {
    REDIS_URL: redis.url!,
    BRIG_STATE_DIR: stateDir,
    BRIG_CGROUP_PARENT: `brig-test-${process.pid}`,
    BRIG_UID_BASE: String(uidBase('e2e/redis-outage', 1)),
    BRIG_SLOTS: '1',
    BRIG_WORKER_METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    BRIG_RATE_LIMIT_PER_MINUTE: '0',
  });
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        apiLines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    }),
  );
  api = await startApi({ config: loadServiceConfig({ ...env, PORT: '0' }), logger });
  worker = spawn(process.execPath, [BRIG, 'worker'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout!.on('data', (chunk: Buffer) => {
    workerOut += chunk.toString();
  });
  worker.stderr!.on('data', (chunk: Buffer) => {
    workerErr += chunk.toString();
  });
  await until('the worker to be live', async () => (await get('/readyz')).status === 200, 60_000);
});

after(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  await api?.close();
  await redis?.stop();
  rmSync(redisDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function request(method: string, path: string, body?: unknown) {
  const started = Date.now();
  const res = await fetch(api.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text, ms: Date.now() - started };
}
const get = (path: string) => request('GET', path);

test('while Redis is down every answer is a prompt 503 store_unavailable; afterwards runs work again; outages are logged once', async () => {
  const before = await request('POST', '/v1/runs?wait=true', { language: 'python', source: 'print(1)' });
  assert.equal(before.status, 200, before.text);
  const { id } = JSON.parse(before.text) as { id: string };

  await redis.stop();
  const outageEnds = Date.now() + OUTAGE_MS;
  let answers = 0;
  while (Date.now() < outageEnds) {
    for (const [method, path, body] of [
      ['POST', '/v1/runs', { language: 'python', source: 'print(2)' }],
      ['GET', `/v1/runs/${id}`],
      ['DELETE', `/v1/runs/${id}`],
      ['GET', `/v1/runs/${id}/events`],
      ['GET', '/v1/languages'],
    ] as const) {
      const answer = await request(method, path, body);
      answers++;
      assert.equal(answer.status, 503, `${method} ${path}: ${answer.text}`);
      assert.equal((JSON.parse(answer.text) as { error: { code: string } }).error.code, 'store_unavailable');
      assert.ok(Number(answer.retryAfter) >= 1, 'Retry-After');
      assert.ok(answer.ms < ANSWER_WITHIN_MS, `${method} ${path} took ${answer.ms} ms`);
    }
    const ready = await get('/readyz');
    assert.equal(ready.status, 503);
    const readiness = JSON.parse(ready.text) as { redis: string; reasons: string[] };
    assert.equal(readiness.redis, 'unreachable');
    assert.doesNotMatch(ready.text, /ECONNREFUSED|127\.0\.0\.1|max retries/i, 'no Redis error text for anonymous callers');
    assert.equal((await get('/healthz')).status, 200, 'the process itself is fine');
  }
  assert.ok(answers >= 5);

  redis = await startPrivateRedis(redisDir, { tcp: { port: redis.port! } });
  await until("the API to be ready again (the worker's heartbeat is back)", async () => (await get('/readyz')).status === 200, 30_000);
  const afterwards = await request('POST', '/v1/runs?wait=true', { language: 'python', source: 'print(3)' });
  assert.equal(afterwards.status, 200, afterwards.text);
  assert.equal((JSON.parse(afterwards.text) as { verdict: string }).verdict, 'ok');

  // The API's two connections (commands, events) each log the outage once and its end once.
  const apiOutage = apiLines.filter((line) => line.includes('redis unreachable')).map((line) => JSON.parse(line).connection as string);
  assert.ok(apiOutage.length >= 1, 'the API logged the outage');
  assert.equal(new Set(apiOutage).size, apiOutage.length, `one line per connection, not per retry: ${apiOutage.join(', ')}`);
  assert.ok(apiLines.some((line) => line.includes('redis reachable again')));
  for (const line of apiLines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
  assert.ok(!apiLines.some((line) => JSON.parse(line).level >= 50), 'nothing logged at error level');

  // The worker: each of its connections (commands, cancel, the run queue, the callback queue…) once at most.
  const workerLines = workerOut.split('\n').filter(Boolean);
  const workerOutage = workerLines
    .filter((line) => line.includes('redis unreachable'))
    .map((line) => JSON.parse(line).connection as string);
  assert.ok(workerOutage.length >= 1, 'the worker logged the outage');
  assert.equal(new Set(workerOutage).size, workerOutage.length, `one line per connection, not per retry: ${workerOutage.join(', ')}`);
  for (const line of workerLines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
  assert.doesNotMatch(workerErr, /ioredis|Unhandled error event/, 'no unstructured ioredis output');
});
