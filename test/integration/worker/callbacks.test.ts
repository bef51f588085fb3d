/**
 * Callback delivery through its own queue, against a real Redis and real
 * HTTP receivers on loopback: the SSRF forms are refused before any
 * connection, the address checked is the one connected to, redirects are
 * not followed, the signature verifies as the README says, and failures are
 * retried (or not) as documented.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { ServiceConfig } from '../../../services/shared/config.ts';
import { keys, type RunRecord } from '../../../services/shared/contract.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { createMetrics, type Metrics } from '../../../services/shared/metrics.ts';
import { AddressPolicy } from '../../../services/worker/callbacks/address-policy.ts';
import { type CallbackOutcome, startCallbackWorker } from '../../../services/worker/callbacks/callback-worker.ts';
import { type CallbackJobData, CallbackQueue } from '../../../services/worker/callbacks/queue.ts';
import { pinnedLookup, type Resolver, resolveTarget } from '../../../services/worker/callbacks/target.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { verifyCallback } from '../../helpers/webhook.ts';
import { testServiceConfig } from './harness.ts';

const SECRET = `whsec_${Buffer.alloc(32, 0x42).toString('base64')}`;
/** Short enough that a test waits for three attempts in well under a second. */
const BACKOFF_MS = 40;
const WAIT_MS = 15_000;
const POLL_MS = 20;

let redis: TestRedis;
let client: Redis;
let runCounter = 0;

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});

after(async () => {
  await client?.quit();
  await redis?.stop();
});

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  port: number;
  requests: Received[];
  /** TCP connections accepted, whether or not a request followed. */
  connections: number;
  close(): Promise<void>;
}

type Answer = (req: IncomingMessage, res: ServerResponse, index: number) => void;
const ok: Answer = (_req, res) => res.end('ok');

async function receiver(answer: Answer = ok, host = '127.0.0.1', port = 0): Promise<Receiver> {
  const state: Receiver = { port: 0, requests: [], connections: 0, close: async () => {} };
  const server = createServer((req, res) => {
    let body = '';
    req
      .setEncoding('utf8')
      .on('data', (d: string) => (body += d))
      .on('end', () => {
        const index = state.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body }) - 1;
        answer(req, res, index);
      });
  });
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: host.includes(':') }, resolve);
  });
  state.port = (server.address() as AddressInfo).port;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return state;
}

interface Callbacks {
  queue: CallbackQueue;
  worker: Worker<CallbackJobData, void>;
  metrics: Metrics;
  count(outcome: CallbackOutcome): Promise<number>;
  close(): Promise<void>;
}

/** A callback queue and its worker, as `brig worker` runs them, with their own metrics. */
async function startCallbacks(
  service: Partial<ServiceConfig> = {},
  testing: { resolve?: Resolver; tlsCa?: string } = {},
): Promise<Callbacks> {
  const serviceConfig = testServiceConfig(redis.url, {
    callbackBackoffMs: BACKOFF_MS,
    callbackAttempts: 3,
    callbackTimeoutMs: 2_000,
    ...service,
  });
  const logger = createLogger({ level: serviceConfig.logLevel, name: 'brig-callbacks-test' });
  const metrics = createMetrics({ defaultMetrics: false });
  const queue = new CallbackQueue(
    redis.url,
    { attempts: serviceConfig.callbackAttempts, backoffMs: serviceConfig.callbackBackoffMs },
    logger,
  );
  const worker = startCallbackWorker({
    redisUrl: redis.url,
    serviceConfig,
    readRecord: (id) => client.getBuffer(keys.run(id)),
    metrics,
    logger,
    ...testing,
  });
  await worker.waitUntilReady();
  return {
    queue,
    worker,
    metrics,
    async count(outcome) {
      const { values } = await metrics.callbacks.get();
      return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    },
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}

/** A final record in Redis, as the run worker leaves it. */
async function finishedRun(stdout = 'hello\n'): Promise<RunRecord> {
  const id = `cbrun${process.pid}x${++runCounter}`;
  const record: RunRecord = {
    id,
    language: 'python',
    status: 'done',
    verdict: 'ok',
    compile: null,
    createdAt: Date.now() - 50,
    startedAt: Date.now() - 40,
    finishedAt: Date.now(),
    run: {
      verdict: 'ok',
      exitCode: 0,
      signal: null,
      cpuMs: 12,
      wallMs: 20,
      memoryKb: 9000,
      maxRssKb: 9500,
      stdout,
      stderr: '',
      truncated: false,
    },
  };
  await client.set(keys.run(id), JSON.stringify(record), 'EX', 600);
  return record;
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(POLL_MS);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function waitForOutcomes(callbacks: Callbacks, expected: Partial<Record<CallbackOutcome, number>>): Promise<void> {
  const counted = async () =>
    Object.fromEntries(await Promise.all((['delivered', 'retried', 'dropped'] as const).map(async (o) => [o, await callbacks.count(o)])));
  await until(`callback outcomes ${JSON.stringify(expected)}`, async () => {
    const now = await counted();
    return Object.entries(expected).every(([outcome, n]) => now[outcome] === n);
  }).catch(async (error) => {
    throw new Error(`${(error as Error).message}; counted ${JSON.stringify(await counted())}`);
  });
}

const log = createLogger({ level: 'silent', name: 'test' });

test('with an empty allow-list, every loopback form is refused at once and no connection reaches the listener', async () => {
  const v4 = await receiver();
  let v6: Receiver | null = null;
  try {
    v6 = await receiver(ok, '::1', v4.port);
  } catch {
    // no IPv6 loopback here: its forms are still refused, only the listener is missing
  }
  const callbacks = await startCallbacks();
  try {
    const port = v4.port;
    const forms = [
      `http://127.0.0.1:${port}/x`,
      `http://[::1]:${port}/x`,
      `http://2130706433:${port}/x`,
      `http://0x7f000001:${port}/x`,
      `http://0177.0.0.1:${port}/x`,
      `http://127.1:${port}/x`,
      `http://[::ffff:127.0.0.1]:${port}/x`,
      `http://[::ffff:7f00:1]:${port}/x`,
      `http://localhost:${port}/x`,
      `http://LocalHost:${port}/x`,
      `http://0:${port}/x`,
      `http://[::]:${port}/x`,
      `https://127.0.0.1:${port}/x`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://10.0.0.1:${port}/x`,
      `http://192.168.1.1/x`,
      `http://100.64.0.1/x`,
      `http://[fd00::1]/x`,
      `http://[fe80::1]/x`,
    ];
    for (const url of forms) {
      const record = await finishedRun();
      await callbacks.queue.enqueue({ runId: record.id, url }, log);
    }
    await waitForOutcomes(callbacks, { dropped: forms.length });
    assert.equal(await callbacks.count('retried'), 0, 'a refused address is not retried');
    assert.equal(await callbacks.count('delivered'), 0);
    assert.equal(v4.connections, 0, 'nothing reached the IPv4 loopback listener');
    assert.equal(v6?.connections ?? 0, 0, 'nothing reached the IPv6 loopback listener');
  } finally {
    await callbacks.close();
    await v4.close();
    await v6?.close();
  }
});

test('the address checked is the one connected to: a resolver that answers an admitted address, then another, is asked once', async () => {
  const admitted = await receiver();
  // 127.0.0.2 is loopback too, and not in the allow-list: the rebinding target.
  const rebound = await receiver(ok, '127.0.0.2', admitted.port);
  const asked: string[] = [];
  const rebinding: Resolver = async (hostname) => {
    asked.push(hostname);
    return [{ address: asked.length === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
  };
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'] }, { resolve: rebinding });
  try {
    const record = await finishedRun();
    await callbacks.queue.enqueue({ runId: record.id, url: `http://rebind.test:${admitted.port}/hook` }, log);
    await waitForOutcomes(callbacks, { delivered: 1 });
    assert.deepEqual(asked, ['rebind.test'], 'one lookup per attempt, none at connect time');
    assert.equal(admitted.requests.length, 1);
    assert.equal(admitted.requests[0]!.headers.host, `rebind.test:${admitted.port}`, 'the Host header keeps the name');
    assert.equal(rebound.connections, 0);

    // The same resolver, asked again, now answers the refused address: refused, and nothing connects.
    const second = await finishedRun();
    await callbacks.queue.enqueue({ runId: second.id, url: `http://rebind.test:${admitted.port}/hook` }, log);
    await waitForOutcomes(callbacks, { delivered: 1, dropped: 1 });
    assert.equal(rebound.connections, 0);
    assert.equal(admitted.requests.length, 1);
  } finally {
    await callbacks.close();
    await admitted.close();
    await rebound.close();
  }
});

test('a public first answer is what the connection is given, whatever a later lookup would say', async () => {
  let calls = 0;
  const rebinding: Resolver = async () => [{ address: ++calls === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
  const target = await resolveTarget('https://rebind.test/hook', new AddressPolicy(), rebinding);
  assert.equal(target.address, '93.184.216.34');
  // What net.connect would get, asked both ways (one address, or all of them): no connection is made here.
  const lookup = pinnedLookup(target);
  const one = await new Promise<string>((resolve) => lookup('rebind.test', {}, (_e, address) => resolve(address as string)));
  const all = await new Promise<unknown>((resolve) => lookup('rebind.test', { all: true }, (_e, addresses) => resolve(addresses)));
  assert.equal(one, '93.184.216.34');
  assert.deepEqual(all, [{ address: '93.184.216.34', family: 4 }]);
  assert.equal(calls, 1);
});

test("HTTPS to a pinned address keeps the URL's name for SNI and the certificate check", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=hooks.test',
        '-addext',
        'subjectAltName=DNS:hooks.test',
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const serverNames: (string | false | null)[] = [];
    let requests = 0;
    const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      requests++;
      req.resume().on('end', () => res.end('ok'));
    });
    server.on('secureConnection', (socket) => serverNames.push(socket.servername));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const toLoopback: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'], callbackAttempts: 1 }, { resolve: toLoopback, tlsCa: cert });
    try {
      await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `https://hooks.test:${port}/hook` }, log);
      await waitForOutcomes(callbacks, { delivered: 1 });
      assert.deepEqual(serverNames, ['hooks.test']);
      // The same address under another name: the certificate does not name it, so nothing is sent.
      await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `https://other.test:${port}/hook` }, log);
      await waitForOutcomes(callbacks, { delivered: 1, dropped: 1 });
      assert.equal(requests, 1);
    } finally {
      await callbacks.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a redirect is not followed, and not retried', async () => {
  const elsewhere = await receiver();
  const redirecting = await receiver((_req, res) => {
    res.writeHead(307, { location: `http://127.0.0.1:${elsewhere.port}/stolen` }).end();
  });
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'] });
  try {
    const record = await finishedRun();
    await callbacks.queue.enqueue({ runId: record.id, url: `http://127.0.0.1:${redirecting.port}/hook` }, log);
    await waitForOutcomes(callbacks, { dropped: 1 });
    assert.equal(redirecting.requests.length, 1);
    assert.equal(elsewhere.connections, 0);
    assert.equal(await callbacks.count('retried'), 0);
  } finally {
    await callbacks.close();
    await redirecting.close();
    await elsewhere.close();
  }
});

test('the callback carries the record as stored, signed as the README says, with the run id to deduplicate on', async () => {
  const hook = await receiver();
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'], callbackSecret: SECRET });
  try {
    const record = await finishedRun('résultat ✓\n');
    await callbacks.queue.enqueue({ runId: record.id, url: `http://127.0.0.1:${hook.port}/hook?token=abc` }, log);
    await waitForOutcomes(callbacks, { delivered: 1 });
    const [request] = hook.requests as [Received];
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/hook?token=abc');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['webhook-id'], record.id);
    assert.deepEqual(JSON.parse(request.body), record);
    assert.equal(request.body, await client.get(keys.run(record.id)), 'byte for byte');
    assert.equal(verifyCallback(SECRET, request.headers, request.body), true, 'the signature verifies');
    assert.equal(verifyCallback(SECRET, request.headers, request.body.replace('résultat', 'resultat')), false, 'a changed body does not');
    assert.equal(
      verifyCallback(`whsec_${Buffer.alloc(32, 1).toString('base64')}`, request.headers, request.body),
      false,
      'another key does not',
    );
  } finally {
    await callbacks.close();
    await hook.close();
  }
});

test('a receiver that fails twice gets the record on the third attempt, with the same id each time', async () => {
  const hook = await receiver((_req, res, index) => {
    res.statusCode = index === 0 ? 503 : index === 1 ? 500 : 200;
    res.end();
  });
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'], callbackSecret: SECRET, callbackAttempts: 4 });
  try {
    const record = await finishedRun();
    await callbacks.queue.enqueue({ runId: record.id, url: `http://127.0.0.1:${hook.port}/hook` }, log);
    await waitForOutcomes(callbacks, { retried: 2, delivered: 1 });
    assert.equal(hook.requests.length, 3);
    assert.deepEqual(
      hook.requests.map((r) => r.headers['webhook-id']),
      [record.id, record.id, record.id],
    );
    for (const request of hook.requests) assert.equal(verifyCallback(SECRET, request.headers, request.body), true);
    assert.deepEqual(JSON.parse(hook.requests[2]!.body), record);
  } finally {
    await callbacks.close();
    await hook.close();
  }
});

test('a 4xx is dropped at once; 408 and 429 are tried again', async () => {
  const refusing = await receiver((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const busy = await receiver((_req, res, index) => {
    res.statusCode = index === 0 ? 429 : index === 1 ? 408 : 204;
    res.end();
  });
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'] });
  try {
    await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `http://127.0.0.1:${refusing.port}/hook` }, log);
    await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `http://127.0.0.1:${busy.port}/hook` }, log);
    await waitForOutcomes(callbacks, { dropped: 1, retried: 2, delivered: 1 });
    assert.equal(refusing.requests.length, 1, 'a 404 is not retried');
    assert.equal(busy.requests.length, 3);
  } finally {
    await callbacks.close();
    await refusing.close();
    await busy.close();
  }
});

test('a receiver that never answers times out and is retried; after the last attempt the callback is dropped', async () => {
  const silent = await receiver(() => {
    /* never answers */
  });
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'], callbackAttempts: 2, callbackTimeoutMs: 300 });
  try {
    await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `http://127.0.0.1:${silent.port}/hook` }, log);
    await waitForOutcomes(callbacks, { retried: 1, dropped: 1 });
    assert.equal(silent.requests.length, 2);
    const { values } = await callbacks.metrics.callbackDuration.get();
    const retriedSeconds = values.find(
      (v) => v.metricName === 'brig_callback_duration_seconds_sum' && v.labels.outcome === 'retried',
    )!.value;
    assert.ok(retriedSeconds >= 0.3 && retriedSeconds < 2, `the attempt took ${retriedSeconds} s`);
  } finally {
    await callbacks.close();
    await silent.close();
  }
});

test('the response body is not read: an endless one does not hold the delivery', async () => {
  const endless = await receiver((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', pump);
    pump();
  });
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'], callbackTimeoutMs: 5_000 });
  try {
    const startedAt = Date.now();
    await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `http://127.0.0.1:${endless.port}/hook` }, log);
    await waitForOutcomes(callbacks, { delivered: 1 });
    assert.ok(Date.now() - startedAt < 3_000);
  } finally {
    await callbacks.close();
    await endless.close();
  }
});

test('a record that is not final (its run is running again) is dropped, whether its head is laid out as Brig writes it or not', async () => {
  const hook = await receiver();
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'] });
  try {
    const { id, language, createdAt } = await finishedRun();
    // As the worker writes a running record (id, language, status first), and in another key order (parsed to know).
    await client.set(keys.run(id), JSON.stringify({ id, language, status: 'running', verdict: null, compile: null, createdAt }), 'EX', 600);
    await callbacks.queue.enqueue({ runId: id, url: `http://127.0.0.1:${hook.port}/hook` }, log);
    await waitForOutcomes(callbacks, { dropped: 1 });
    await client.set(keys.run(id), JSON.stringify({ status: 'running', id, language, verdict: null, compile: null, createdAt }), 'EX', 600);
    await callbacks.queue.enqueue({ runId: id, url: `http://127.0.0.1:${hook.port}/hook?again` }, log);
    await waitForOutcomes(callbacks, { dropped: 2 });
    assert.equal(hook.connections, 0);
  } finally {
    await callbacks.close();
    await hook.close();
  }
});

test('a record that expired before its callback is dropped, not retried; the metrics name each outcome', async () => {
  const hook = await receiver();
  const callbacks = await startCallbacks({ callbackAllow: ['127.0.0.1'] });
  try {
    await callbacks.queue.enqueue({ runId: 'cbrunexpired', url: `http://127.0.0.1:${hook.port}/hook` }, log);
    await waitForOutcomes(callbacks, { dropped: 1 });
    assert.equal(hook.connections, 0, 'the record is read before anything is sent');
    await callbacks.queue.enqueue({ runId: (await finishedRun()).id, url: `http://127.0.0.1:${hook.port}/hook` }, log);
    await waitForOutcomes(callbacks, { dropped: 1, delivered: 1 });
    const text = await callbacks.metrics.registry.metrics();
    assert.match(text, /brig_callbacks_total\{outcome="dropped"\} 1/);
    assert.match(text, /brig_callbacks_total\{outcome="delivered"\} 1/);
    assert.match(text, /brig_callback_duration_seconds_count\{outcome="delivered"\} 1/);
  } finally {
    await callbacks.close();
    await hook.close();
  }
});
