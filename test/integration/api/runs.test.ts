import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { newRunId } from '../../../services/api/runs/ids.ts';
import { releaseRun } from '../../../services/shared/admission.ts';
import {
  CANCEL_CHANNEL,
  FINAL_EVENT_RECORD_MAX_BYTES,
  keys,
  RUN_EVENTS_CHANNEL,
  type RunEvent,
  type RunRecord,
} from '../../../services/shared/contract.ts';
import { doneEventHead, storedStatus } from '../../../services/shared/run-store.ts';
import { type ApiHarness, judgeEverythingOk, PYTHON_HELLO, readEvents, redisServerForFile, startHarness } from './harness.ts';

const redisServer = redisServerForFile();

interface ErrorBody {
  error: { code: string; message: string; field: string | null };
}

const JUDGED = {
  ...PYTHON_HELLO,
  tests: [
    { name: 'one', stdin: '1', expectedOutput: 'a' },
    { stdin: '2', expectedOutput: 'b' },
  ],
};

async function submit(h: ApiHarness, body: unknown = PYTHON_HELLO, query = ''): Promise<{ id: string; status: string }> {
  const res = await h.fetch(`/v1/runs${query}`, { json: body });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()) as { id: string; status: string };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('runs', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startHarness(redisServer, { rateLimitPerMinute: 0, waitTimeoutMs: 5_000 });
    await h.heartbeat();
  });
  after(() => h?.close());

  test('POST answers 202 with a time-sortable id and Location; record queued; job carries the request id', async () => {
    const res = await h.fetch('/v1/runs', { json: JUDGED, headers: { 'x-request-id': 'client-req-42' } });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('x-request-id'), 'client-req-42');
    const { id, status } = (await res.json()) as { id: string; status: string };
    assert.equal(status, 'queued');
    assert.match(id, /^[0-9a-z]{25}$/);
    assert.equal(res.headers.get('location'), `/v1/runs/${id}`);
    assert.ok(Math.abs(parseInt(id.slice(0, 9), 36) - Date.now()) < 5_000, 'the id carries its creation time');
    const second = await submit(h);
    assert.ok(second.id > id, 'later ids sort after earlier ones');

    const record = (await (await h.fetch(`/v1/runs/${id}`)).json()) as RunRecord;
    assert.deepEqual({ ...record, createdAt: 0 }, { id, language: 'python', status: 'queued', verdict: null, compile: null, createdAt: 0 });
    const ttl = await h.redis.ttl(keys.run(id));
    assert.ok(ttl > 0 && ttl <= h.config.resultTtlSeconds, `record TTL ${ttl}`);

    const job = await h.queue.getJob(id);
    assert.ok(job);
    assert.equal(job.data.requestId, 'client-req-42');
    assert.deepEqual(job.data.files, [{ name: 'main.py', contentBase64: Buffer.from('print("hello")').toString('base64') }]);
    assert.deepEqual(
      job.data.tests.map((t) => t.name),
      ['one', 'test 2'],
    );
    assert.equal(job.data.compare, 'trim');
    assert.equal(job.opts.removeOnComplete, true);
    assert.ok(job.opts.removeOnFail, 'failed jobs are removed too');
    await h.queue.obliterate({ force: true });
  });

  test('a request id that is not plain is replaced by a generated one', async () => {
    const res = await h.fetch('/healthz', { headers: { 'x-request-id': 'has spaces and "quotes"' } });
    assert.match(res.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
  });

  test('GET of an unknown id → 404 run_not_found; of an id older than the TTL → run_expired', async () => {
    for (const id of [newRunId(), 'not-an-id']) {
      const res = await h.fetch(`/v1/runs/${id}`);
      assert.equal(res.status, 404);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'run_not_found');
    }
    const old = await h.fetch(`/v1/runs/${newRunId(Date.now() - (h.config.resultTtlSeconds + 1) * 1000)}`);
    assert.equal(((await old.json()) as ErrorBody).error.code, 'run_expired');
  });

  test('GET sends the record as stored, byte for byte: never parsed and written again', async () => {
    const id = newRunId();
    const record = {
      id,
      language: 'python',
      status: 'done',
      verdict: 'ok',
      createdAt: Date.now(),
      run: { verdict: 'ok', stdout: `é\u2028${'x'.repeat(FINAL_EVENT_RECORD_MAX_BYTES)}`, stdoutEncoding: 'utf8' },
    };
    // Spaced out, which no re-stringified record would be: the answer can only match if it is the stored bytes.
    const stored = JSON.stringify(record, null, 1);
    await h.redis.set(keys.run(id), stored, 'EX', 60);
    const res = await h.fetch(`/v1/runs/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(await res.text(), stored);
    await h.redis.del(keys.run(id));
  });

  test('wait=true answers 200 with the final record when a worker finishes in time', async () => {
    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds));
    try {
      const res = await h.fetch('/v1/runs?wait=true', { json: JUDGED });
      assert.equal(res.status, 200);
      const record = (await res.json()) as RunRecord;
      assert.equal(record.status, 'done');
      assert.equal(record.verdict, 'ok');
      assert.equal(record.tests?.length, 2);
      assert.deepEqual(record, await (await h.fetch(`/v1/runs/${record.id}`)).json());
      await until('the completed job to be removed', async () => (await h.queue.getJob(record.id)) === undefined);
    } finally {
      await worker.close();
    }
  });

  test('SSE: a followed run sends queued, started, compiled, each test, done in order, then the stream ends', async () => {
    const { id } = await submit(h, JUDGED);
    const stream = await h.fetch(`/v1/runs/${id}/events`);
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type')!, /^text\/event-stream/);
    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds, 30));
    try {
      const events = await readEvents(stream); // resolves only when the server ends the stream
      assert.deepEqual(
        events.map((e) => e.type),
        ['queued', 'started', 'compiled', 'test', 'test', 'done'],
      );
      assert.ok(events.every((e) => e.type === e.data.type && e.data.id === id));
      assert.deepEqual(
        events.filter((e) => e.data.type === 'test').map((e) => (e.data as Extract<RunEvent, { type: 'test' }>).index),
        [0, 1],
      );
      const done = events.at(-1)!.data as Extract<RunEvent, { type: 'done' }>;
      assert.deepEqual(done.record, await (await h.fetch(`/v1/runs/${id}`)).json());
    } finally {
      await worker.close();
    }
  });

  test('SSE: a client that connects to a finished run gets done at once, and the stream ends', async () => {
    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds));
    let id: string;
    try {
      id = ((await (await h.fetch('/v1/runs?wait=1', { json: PYTHON_HELLO })).json()) as RunRecord).id;
    } finally {
      await worker.close();
    }
    const events = await readEvents(await h.fetch(`/v1/runs/${id}/events`));
    assert.deepEqual(
      events.map((e) => e.type),
      ['done'],
    );
    assert.equal((events[0]!.data as Extract<RunEvent, { type: 'done' }>).record.status, 'done');
  });

  test("SSE: a finished run's done event carries its record as stored, byte for byte", async () => {
    const id = newRunId();
    const record = { id, language: 'python', status: 'done', verdict: 'ok', createdAt: Date.now(), run: { stdout: 'é'.repeat(70_000) } };
    // The escapes are what no re-stringified record would hold: the event can only match if it splices the stored bytes.
    const stored = JSON.stringify(record).replaceAll('é', '\\u00e9');
    await h.redis.set(keys.run(id), stored, 'EX', 60);
    const res = await h.fetch(`/v1/runs/${id}/events`);
    assert.equal(await res.text(), `event: done\ndata: {"type":"done","id":"${id}","record":${stored}}\n\n`);
    await h.redis.del(keys.run(id));
  });

  test('the API writes records whose status the head tells (queued, then cancelled)', async () => {
    const { id } = await submit(h);
    assert.equal(storedStatus((await h.redis.getBuffer(keys.run(id)))!), 'queued');
    assert.equal((await h.fetch(`/v1/runs/${id}`, { method: 'DELETE' })).status, 202);
    assert.equal(storedStatus((await h.redis.getBuffer(keys.run(id)))!), 'cancelled');
  });

  test('SSE: a client that joins a running run gets what it missed from the record, then the live events', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const worker = h.worker(async (job, lock) => {
      const { id, createdAt } = job.data;
      const running: RunRecord = {
        id,
        language: 'python',
        status: 'running',
        verdict: null,
        compile: null,
        createdAt,
        startedAt: Date.now(),
      };
      const tests = [0, 1].map((index) => ({
        name: `t${index}`,
        verdict: 'ok' as const,
        exitCode: 0,
        signal: null,
        cpuMs: 1,
        wallMs: 1,
        memoryKb: 1,
        maxRssKb: 1,
        truncated: false,
      }));
      await h.store.start({ ...running, progress: { workerId: 'test-worker', compile: null, tests: [tests[0]!] } }, lock, [
        { type: 'started', id, workerId: 'test-worker' },
        { type: 'compiled', id, compile: null },
        { type: 'test', id, index: 0, test: tests[0]! },
      ]);
      await released;
      await h.store.progress({ ...running, progress: { workerId: 'test-worker', compile: null, tests } }, lock, {
        type: 'test',
        id,
        index: 1,
        test: tests[1]!,
      });
      const record: RunRecord = {
        ...running,
        status: 'done',
        verdict: 'ok',
        tests: tests.map((t) => ({ ...t, stdout: '', stderr: '' })),
        finishedAt: Date.now(),
      };
      await h.store.putFinal(record, lock);
      return { id, status: record.status, verdict: record.verdict };
    });
    try {
      const { id } = await submit(h, JUDGED);
      // Published before anyone followed the run: only the record tells it now.
      await until('the first test to be reported', async () => (await h.store.get(id))?.progress?.tests.length === 1);
      const stream = await h.fetch(`/v1/runs/${id}/events`);
      release();
      const events = await readEvents(stream);
      assert.deepEqual(
        events.map((e) => e.type),
        ['queued', 'started', 'compiled', 'test', 'test', 'done'],
      );
      assert.equal((events[1]!.data as Extract<RunEvent, { type: 'started' }>).workerId, 'test-worker');
      assert.deepEqual(
        events.filter((e) => e.data.type === 'test').map((e) => (e.data as Extract<RunEvent, { type: 'test' }>).index),
        [0, 1],
      );
    } finally {
      release();
      await worker.close();
    }
  });

  test('cancel of a queued run: 202 cancelled, the record says so, the job is gone, SSE gets cancelled', async () => {
    const subscriber = new Redis(redisServer.url);
    try {
      const published: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => published.push(message));
      await subscriber.subscribe(CANCEL_CHANNEL);

      const { id } = await submit(h);
      const stream = await h.fetch(`/v1/runs/${id}/events`);
      const res = await h.fetch(`/v1/runs/${id}`, { method: 'DELETE' });
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { id, status: 'cancelled' });

      const events = await readEvents(stream);
      assert.deepEqual(
        events.map((e) => e.type),
        ['queued', 'cancelled'],
      );
      const record = (await (await h.fetch(`/v1/runs/${id}`)).json()) as RunRecord;
      assert.equal(record.status, 'cancelled');
      assert.ok(record.finishedAt);
      assert.equal(await h.queue.getJob(id), undefined);
      assert.equal(await h.redis.get(keys.cancel(id)), '1');
      assert.ok((await h.redis.ttl(keys.cancel(id))) > 0);
      await until('the cancel message', async () => published.includes(id));

      const late = await readEvents(await h.fetch(`/v1/runs/${id}/events`));
      assert.deepEqual(
        late.map((e) => e.type),
        ['cancelled'],
      );
      // Cancelling again: the run is final, so the answer is its record.
      const again = await h.fetch(`/v1/runs/${id}`, { method: 'DELETE' });
      assert.equal(again.status, 200);
      assert.equal(((await again.json()) as RunRecord).status, 'cancelled');
    } finally {
      await subscriber.quit();
    }
  });

  test('cancel of a running run: 202, the worker hears it and ends the run as cancelled, SSE gets cancelled', async () => {
    // The worker side as the contract has it: listen on CANCEL_CHANNEL, abort, write cancelled, return the record.
    const subscriber = new Redis(redisServer.url);
    const aborts = new Map<string, () => void>();
    subscriber.on('message', (_channel: string, runId: string) => aborts.get(runId)?.());
    await subscriber.subscribe(CANCEL_CHANNEL);
    const worker = h.worker(async (job, lock) => {
      const running: RunRecord = {
        id: job.data.id,
        language: 'python',
        status: 'running',
        verdict: null,
        compile: null,
        createdAt: job.data.createdAt,
        startedAt: Date.now(),
      };
      await h.store.start({ ...running, progress: { workerId: 'test-worker', tests: [] } }, lock, [
        { type: 'started', id: job.data.id, workerId: 'test-worker' },
      ]);
      await new Promise<void>((resolve) => aborts.set(job.data.id, resolve));
      const cancelled: RunRecord = { ...running, status: 'cancelled', finishedAt: Date.now() };
      await h.store.putFinal(cancelled, lock);
      return { id: cancelled.id, status: cancelled.status, verdict: cancelled.verdict };
    });
    try {
      const { id } = await submit(h);
      await until(
        'the run to start',
        async () => ((await h.fetch(`/v1/runs/${id}`).then((r) => r.json())) as RunRecord).status === 'running',
      );
      const stream = await h.fetch(`/v1/runs/${id}/events`);
      const res = await h.fetch(`/v1/runs/${id}`, { method: 'DELETE' });
      assert.equal(res.status, 202);
      // The status as it is when the answer goes out: the worker may have been quicker than us.
      const { status } = (await res.json()) as { status: string };
      assert.ok(status === 'running' || status === 'cancelled', status);
      assert.deepEqual(
        (await readEvents(stream)).map((e) => e.type),
        ['queued', 'started', 'cancelled'],
      );
      assert.equal(((await (await h.fetch(`/v1/runs/${id}`)).json()) as RunRecord).status, 'cancelled');
    } finally {
      await worker.close();
      await subscriber.quit();
    }
  });

  test('cancel of a done run → 200 with the record, which stays done; of an unknown one → 404', async () => {
    const worker = h.worker(judgeEverythingOk(h.redis, h.config.resultTtlSeconds));
    let record: RunRecord;
    try {
      record = (await (await h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO })).json()) as RunRecord;
    } finally {
      await worker.close();
    }
    const res = await h.fetch(`/v1/runs/${record.id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), record);
    assert.equal(((await (await h.fetch(`/v1/runs/${record.id}`)).json()) as RunRecord).status, 'done');
    assert.equal(await h.redis.exists(keys.cancel(record.id)), 0, 'no cancel is asked of a finished run');

    const missing = await h.fetch(`/v1/runs/${newRunId()}`, { method: 'DELETE' });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as ErrorBody).error.code, 'run_not_found');
  });

  test("wait=true gets a final record too large to ride in its 'done' signal from the record itself", async () => {
    const stdout = 'x'.repeat(FINAL_EVENT_RECORD_MAX_BYTES + 1);
    const worker = h.worker(async (job, lock) => {
      const { id, createdAt } = job.data;
      const record: RunRecord = {
        id,
        language: 'python',
        status: 'done',
        verdict: 'ok',
        compile: null,
        run: {
          stdout,
          stderr: '',
          exitCode: 0,
          signal: null,
          verdict: 'ok',
          cpuMs: 1,
          wallMs: 1,
          memoryKb: 1,
          maxRssKb: 1,
          truncated: false,
        },
        createdAt,
        startedAt: Date.now(),
        finishedAt: Date.now(),
      };
      await h.store.putFinal(record, lock);
      return { id, status: record.status, verdict: record.verdict };
    });
    const subscriber = new Redis(redisServer.url);
    try {
      const signals: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => signals.push(message));
      await subscriber.subscribe(RUN_EVENTS_CHANNEL);
      const res = await h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO });
      assert.equal(res.status, 200);
      const record = (await res.json()) as RunRecord;
      assert.equal(record.run?.stdout, stdout);
      await until('the done signal', async () => signals.length > 0);
      assert.deepEqual(JSON.parse(signals[0]!), { type: 'done', id: record.id }, 'announced without the record');
    } finally {
      await subscriber.quit();
      await worker.close();
    }
  });

  for (const large of [false, true])
    test(`wait=true and a live event stream pass a final record ${large ? 'too large for its signal' : 'that came with its signal'} on as stored, byte for byte`, async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let taken: string | undefined;
      let stored = '';
      const worker = h.worker(async (job) => {
        const { id, createdAt } = job.data;
        taken = id;
        await released;
        const record = {
          id,
          language: 'python',
          status: 'done',
          verdict: 'ok',
          createdAt,
          run: { stdout: 'é'.repeat(large ? FINAL_EVENT_RECORD_MAX_BYTES : 10), stderr: '漢字 😀' },
        };
        // The escapes are what no re-stringified record would hold: the answers can only match if they pass the stored bytes on.
        // The raw multi-byte characters left in stderr must come through the signal's bytes unchanged too.
        stored = JSON.stringify(record).replaceAll('é', '\\u00e9');
        await h.redis.set(keys.run(id), stored, 'EX', 60);
        await releaseRun(h.redis, id);
        // Spliced in as the worker's final signal does (finalSignal), or left out when too large.
        await h.redis.publish(RUN_EVENTS_CHANNEL, large ? JSON.stringify({ type: 'done', id }) : `${doneEventHead(id)}${stored}}`);
        return { id, status: 'done', verdict: 'ok' };
      });
      try {
        const answer = h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO });
        const id = await until('the job to be taken', async () => taken);
        const stream = await h.fetch(`/v1/runs/${id}/events`);
        release();
        const res = await answer;
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.equal(await res.text(), stored);
        const events = await stream.text();
        assert.ok(events.startsWith('event: queued\n'), events.slice(0, 80));
        assert.ok(events.endsWith(`event: done\ndata: {"type":"done","id":"${id}","record":${stored}}\n\n`), events.slice(-80));
      } finally {
        release();
        await worker.close();
      }
    });

  test('a job that fails without writing a final record ends as internal_error, and waiters hear it', async () => {
    const worker = h.worker(async () => {
      throw new UnrecoverableError('sandbox exploded: /secret/path');
    });
    try {
      const res = await h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO });
      assert.equal(res.status, 200);
      const record = (await res.json()) as RunRecord;
      assert.equal(record.status, 'done');
      assert.equal(record.verdict, 'internal_error');
      assert.equal(record.error?.code, 'run_failed');
      assert.doesNotMatch(record.error!.message, /secret/, 'the failure reason stays in the logs');
    } finally {
      await worker.close();
    }
  });
});

describe('wait timeout', () => {
  test('wait=true answers 202 with the current status when the run does not finish in time', async () => {
    const h = await startHarness(redisServer, { waitTimeoutMs: 300 });
    try {
      await h.heartbeat();
      const started = Date.now();
      const res = await h.fetch('/v1/runs?wait=true', { json: PYTHON_HELLO });
      assert.equal(res.status, 202);
      const body = (await res.json()) as { id: string; status: string };
      assert.equal(body.status, 'queued');
      assert.ok(Date.now() - started >= 300);
      assert.ok(await h.queue.getJob(body.id));
    } finally {
      await h.close();
    }
  });
});

describe('backpressure', () => {
  test('at capacity → 503 queue_full with Retry-After, and nothing is written for the refused run', async () => {
    const h = await startHarness(redisServer, { queueCapacity: 2 });
    try {
      await h.heartbeat();
      await submit(h);
      await submit(h);
      const res = await h.fetch('/v1/runs', { json: PYTHON_HELLO });
      assert.equal(res.status, 503);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'queue_full');
      assert.match(body.error.message, /capacity 2/);
      assert.equal((await h.redis.keys('brig:run:*')).length, 2);
      assert.equal(await h.queue.getPrioritizedCount(), 2, 'every run waits with a priority');
      assert.equal(await h.redis.hlen(keys.reservations), 2, 'the refused run reserved nothing');
    } finally {
      await h.close();
    }
  });
});

describe('result TTL', () => {
  test('after the TTL a run answers 404 run_expired saying how long results are kept', async () => {
    const h = await startHarness(redisServer, { resultTtlSeconds: 1 });
    try {
      await h.heartbeat();
      const { id } = await submit(h);
      assert.equal((await h.fetch(`/v1/runs/${id}`)).status, 200);
      await until('the record to expire', async () => (await h.redis.exists(keys.run(id))) === 0, 3_000);
      await sleep(Math.max(0, parseInt(id.slice(0, 9), 36) + 1_000 - Date.now()));
      for (const [method, path] of [
        ['GET', `/v1/runs/${id}`],
        ['GET', `/v1/runs/${id}/events`],
        ['DELETE', `/v1/runs/${id}`],
      ] as const) {
        const res = await h.fetch(path, { method });
        assert.equal(res.status, 404, `${method} ${path}`);
        const body = (await res.json()) as ErrorBody;
        assert.equal(body.error.code, 'run_expired');
        assert.match(body.error.message, /results are kept for 1 seconds/);
      }
    } finally {
      await h.close();
    }
  });
});
