/**
 * A real worker (real sandboxes, real Redis) takes jobs added the way the API
 * adds them and leaves the final record the contract promises.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, test } from 'node:test';
import { Job as QueueJob } from 'bullmq';
import { loadRuntimeConfig } from '../../../services/shared/config.ts';
import {
  CANCEL_CHANNEL,
  HEARTBEAT_TTL_MS,
  keys,
  QUEUE_NAME,
  type RunOutcome,
  type WorkerHeartbeat,
} from '../../../services/shared/contract.ts';
import { storedStatus } from '../../../services/shared/run-store.ts';
import type { BrigWorker } from '../../../services/worker/worker.ts';
import { verifyCallback } from '../../helpers/webhook.ts';
import { enqueue, readRecord, waitForRecord, workerHarnessForFile } from './harness.ts';

const MAX_COMPILE_OUTPUT_BYTES = 4096;
/** A small workspace, so that a job can overflow it and make the runtime fail on its side (SandboxError). */
const DISK_MB = 4;
/** Small limits keep the file fast on two cores. */
const SMALL = { cpuMs: 1000, wallMs: 3000, memoryMb: 64, outputBytes: 64 * 1024 };
const CALLBACK_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

const h = workerHarnessForFile('worker/runs');
let worker: BrigWorker;

before(async () => {
  worker = await h.startWorker({
    workerId: 'runs-test-worker',
    // Callback receivers here listen on loopback: the allow-list admits them.
    service: { callbackAllow: ['127.0.0.1'], callbackSecret: CALLBACK_SECRET, callbackAttempts: 2, callbackBackoffMs: 50 },
    runtime: { defaults: { ...loadRuntimeConfig({}).defaults, diskMb: DISK_MB }, maxCompileOutputBytes: MAX_COMPILE_OUTPUT_BYTES },
  });
});

const run = async (request: Parameters<typeof enqueue>[2]) =>
  waitForRecord(h.clients.redis, await enqueue(h.clients.queue, h.clients.redis, request));

test('native python: stdin and args in, stdout out, verdict ok; the job returns only the outcome, the record holds the output', async () => {
  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'python',
    source: 'import sys\nprint(input().upper(), *sys.argv[1:])\n',
    stdin: 'hello\n',
    args: ['a', 'b'],
    limits: SMALL,
  });
  const job = (await QueueJob.fromId(h.clients.queue, id))!;
  const returned = (await job.waitUntilFinished(h.clients.queueEvents, 20_000)) as RunOutcome;
  const record = (await readRecord(h.clients.redis, id))!;
  assert.equal(record.status, 'done');
  assert.equal(storedStatus((await h.clients.redis.getBuffer(keys.run(id)))!), 'done', 'the API reads the status from the head');
  assert.equal(record.verdict, 'ok', JSON.stringify(record));
  assert.equal(record.run?.stdout, 'HELLO a b\n');
  assert.equal(record.compile, null);
  assert.equal(record.tests, undefined);
  assert.ok(record.startedAt! >= record.createdAt && record.finishedAt! >= record.startedAt!);
  assert.deepEqual(
    returned,
    { id, status: 'done', verdict: 'ok' },
    "the job's return value (copied into BullMQ's event stream) holds no output",
  );
  const ttl = await h.clients.redis.ttl(keys.run(id));
  assert.ok(ttl > 500 && ttl <= 600, `the record keeps the result TTL, got ${ttl}`);
});

test('progress events arrive in order: started, compiled, one test per test, done; only done carries an output, in its record', async () => {
  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'c',
    source: '#include <stdio.h>\nint main(){int x; if (scanf("%d",&x)!=1) return 1; printf("%d\\n", x*2); return 0;}\n',
    tests: [
      { name: 'one', stdin: '1', expected: '2\n' },
      { name: 'two', stdin: '21', expected: '42' },
    ],
  });
  const record = await waitForRecord(h.clients.redis, id);
  assert.equal(record.verdict, 'ok', JSON.stringify(record));
  const done = await h.clients.events.waitFor(id, 'done');
  assert.deepEqual(h.clients.events.types(id), ['started', 'compiled', 'test', 'test', 'done']);
  const events = h.clients.events.byRun.get(id)!;
  assert.equal(events[0]!.type === 'started' && events[0]!.workerId, worker.workerId);
  assert.deepEqual(
    events.filter((e) => e.type === 'test').map((e) => e.type === 'test' && [e.index, e.test.name, e.test.verdict]),
    [
      [0, 'one', 'ok'],
      [1, 'two', 'ok'],
    ],
  );
  assert.deepEqual(done.type === 'done' && done.record, record, "a small final record rides in its 'done'");
  for (const event of events.filter((e) => e.type !== 'done'))
    assert.doesNotMatch(JSON.stringify(event), /stdout|stderr/, `${event.type} carries no output`);
  assert.equal(record.progress, undefined, 'the final record has no progress: its steps hold everything');
  assert.equal(record.tests?.[1]?.stdout, '42\n');
});

test('c: a compiled program runs natively', async () => {
  const record = await run({ language: 'c', source: '#include <stdio.h>\nint main(){puts("compiled"); return 0;}\n', limits: SMALL });
  assert.equal(record.verdict, 'ok', JSON.stringify(record));
  assert.equal(record.compile?.verdict, 'ok');
  assert.equal(record.run?.stdout, 'compiled\n');
});

test('c: a compile error is compile_error, with the compiler output and no run', async () => {
  const record = await run({ language: 'c', source: 'int main( { return 0; }\n' });
  assert.equal(record.status, 'done');
  assert.equal(record.verdict, 'compile_error');
  assert.equal(record.compile?.verdict, 'runtime_error');
  assert.match(record.compile!.stderr, /error/);
  assert.equal(record.run, null);
});

test('c: compiler output is bounded by maxCompileOutputBytes', async () => {
  const source = Array.from({ length: 400 }, (_, i) => `int f${i}(void) { return undefined_${i}; }`).join('\n');
  const record = await run({ language: 'c', source });
  assert.equal(record.verdict, 'compile_error');
  assert.equal(record.compile?.verdict, 'output_limit', JSON.stringify(record.compile).slice(0, 300));
  assert.ok(record.compile!.stdout.length + record.compile!.stderr.length <= MAX_COMPILE_OUTPUT_BYTES);
  assert.equal(record.compile!.truncated, true);
});

test('judge mode: each test is judged on its output; the first failing test gives the verdict', async () => {
  const record = await run({
    language: 'python',
    source: 'print(int(input()) * 2)\n',
    tests: [
      { name: 'a', stdin: '1\n', expected: '2\n' },
      { name: 'b', stdin: '2\n', expected: '5\n' },
      { name: 'c', stdin: 'x\n', expected: '0\n' },
      { name: 'd', stdin: '4\n', expected: '8  \r\n\n' },
    ],
    limits: SMALL,
  });
  assert.equal(record.verdict, 'wrong_answer');
  assert.deepEqual(
    record.tests?.map((t) => [t.name, t.verdict]),
    [
      ['a', 'ok'],
      ['b', 'wrong_answer'],
      ['c', 'runtime_error'],
      ['d', 'ok'],
    ],
  );
  assert.equal(record.run, undefined);
  assert.equal(record.tests![1]!.stdout, '4\n');
});

test('judge mode: every test runs in a fresh sandbox; files a test writes are gone for the next', async () => {
  const source = [
    'import os',
    'seen = [p for p in ("/box/marker", "/tmp/marker") if os.path.exists(p)]',
    'for p in ("/box/marker", "/tmp/marker"):',
    '    open(p, "w").write("x")',
    'print("seen:", seen)',
  ].join('\n');
  const tests = ['first', 'second', 'third'].map((name) => ({ name, stdin: '', expected: 'seen: []\n' }));
  const record = await run({ language: 'python', source, tests, compare: 'exact', limits: SMALL });
  assert.equal(record.verdict, 'ok', JSON.stringify(record.tests?.map((t) => [t.verdict, t.stdout, t.stderr])));
  assert.equal(record.tests?.length, 3);
});

test('judge mode: the compare mode is applied (float tolerance)', async () => {
  const source = 'print(1/3, 2/3)\n';
  const ok = await run({
    language: 'python',
    source,
    tests: [{ name: 't', stdin: '', expected: '0.333333 0.666667' }],
    compare: { float: 1e-5 },
    limits: SMALL,
  });
  assert.equal(ok.verdict, 'ok');
  const wrong = await run({
    language: 'python',
    source,
    tests: [{ name: 't', stdin: '', expected: '0.333333 0.666667' }],
    compare: 'tokens',
    limits: SMALL,
  });
  assert.equal(wrong.verdict, 'wrong_answer');
});

test('a non-zero exit is runtime_error', async () => {
  const record = await run({ language: 'python', source: 'import sys\nsys.exit(3)\n', limits: SMALL });
  assert.equal(record.verdict, 'runtime_error');
  assert.equal(record.run?.exitCode, 3);
});

test('a CPU burn is time_limit', async () => {
  const record = await run({ language: 'python', source: 'while True:\n    pass\n', limits: { ...SMALL, cpuMs: 500, wallMs: 2000 } });
  assert.equal(record.verdict, 'time_limit');
  assert.ok(record.run!.cpuMs >= 500);
});

test('allocating past the memory limit is memory_limit', async () => {
  const record = await run({
    language: 'python',
    source: 's = "x" * (200 * 1024 * 1024)\nprint(len(s))\n',
    limits: { ...SMALL, memoryMb: 64 },
  });
  assert.equal(record.verdict, 'memory_limit', JSON.stringify(record.run));
});

test('flooding stdout is output_limit', async () => {
  const record = await run({
    language: 'python',
    source: 'while True:\n    print("x" * 1000)\n',
    limits: { ...SMALL, outputBytes: 10_000 },
  });
  assert.equal(record.verdict, 'output_limit');
  assert.equal(record.run?.truncated, true);
});

test('output that is not UTF-8 comes back base64 and marked, and is judged as bytes', async () => {
  const source = 'import sys\nsys.stdout.buffer.write(b"\\xff\\xfe ok\\n")\n';
  const native = await run({ language: 'python', source, limits: SMALL });
  assert.equal(native.verdict, 'ok');
  assert.equal(native.run?.stdoutEncoding, 'base64');
  assert.deepEqual(Buffer.from(native.run!.stdout, 'base64'), Buffer.from([0xff, 0xfe, 0x20, 0x6f, 0x6b, 0x0a]));

  const expected = Buffer.from([0xff, 0xfe, 0x20, 0x6f, 0x6b]);
  const judged = await run({ language: 'python', source, tests: [{ name: 'bytes', stdin: '', expected }], limits: SMALL });
  assert.equal(judged.verdict, 'ok');
  const other = await run({
    language: 'python',
    source,
    tests: [{ name: 'bytes', stdin: '', expected: Buffer.from([0xff, 0xfd, 0x20, 0x6f, 0x6b]) }],
    limits: SMALL,
  });
  assert.equal(other.verdict, 'wrong_answer');
});

test('outputs of several MiB (text with escapes, bytes that are not UTF-8) are stored whole, the record as JSON.stringify writes it', async () => {
  // Over a few slices of output encoding and of record encoding, each done between turns of the event loop.
  const text = 'ünï "q"\\\t😀\n';
  const repeats = 200_000;
  const source = [
    'import sys',
    `sys.stdout.write(${JSON.stringify(text)} * ${repeats})`,
    'sys.stdout.flush()',
    'sys.stderr.buffer.write(bytes(range(256)) * 8192)',
  ].join('\n');
  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'python',
    source,
    limits: { ...SMALL, memoryMb: 128, outputBytes: 8 << 20 },
  });
  const record = await waitForRecord(h.clients.redis, id);
  assert.equal(record.verdict, 'ok', JSON.stringify(record).slice(0, 500));
  assert.equal(record.run!.stdout.length, text.length * repeats);
  assert.ok(record.run!.stdout === text.repeat(repeats), 'stdout whole and unchanged');
  assert.equal(record.run!.stderrEncoding, 'base64');
  assert.ok(Buffer.from(record.run!.stderr, 'base64').equals(Buffer.alloc(256 * 8192).map((_, i) => i % 256)), 'stderr byte for byte');
  const stored = (await h.clients.redis.getBuffer(keys.run(id)))!;
  assert.equal(storedStatus(stored), 'done');
  assert.ok(stored.equals(Buffer.from(JSON.stringify(JSON.parse(stored.toString('utf8'))))), 'stored exactly as JSON.stringify writes it');
});

test('a job asking for limits over the server maximum is internal_error naming the limit, not retried', async () => {
  const id = await enqueue(h.clients.queue, h.clients.redis, { language: 'python', source: 'print(1)\n', limits: { cpuMs: 10_000_000 } });
  const record = await waitForRecord(h.clients.redis, id);
  assert.equal(record.verdict, 'internal_error');
  assert.equal(record.error?.code, 'limit_over_maximum');
  assert.match(record.error!.message, /cpuMs/);
  const job = (await QueueJob.fromId(h.clients.queue, id))!;
  await job.waitUntilFinished(h.clients.queueEvents, 5_000);
  assert.equal((await QueueJob.fromId(h.clients.queue, id))!.attemptsStarted, 1);
});

test("files that do not fit the workspace are the request's fault: internal_error files_too_large, not retried", async () => {
  const tooBig = Buffer.alloc((DISK_MB + 2) * 1024 * 1024, 0x23);
  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'python',
    files: [
      { name: 'main.py', content: 'print(1)\n' },
      { name: 'data.bin', content: tooBig },
    ],
  });
  const record = await waitForRecord(h.clients.redis, id);
  assert.equal(record.status, 'done');
  assert.equal(record.verdict, 'internal_error');
  assert.equal(record.error?.code, 'files_too_large');
  const job = (await QueueJob.fromId(h.clients.queue, id))!;
  await job.waitUntilFinished(h.clients.queueEvents, 5_000);
  const finished = (await QueueJob.fromId(h.clients.queue, id))!;
  assert.equal(finished.attemptsStarted, 1, 'a request error must not be retried');
  assert.deepEqual(finished.returnvalue, { id, status: 'done', verdict: 'internal_error' });
  // Its workspace could not be built, so it never held a sandbox: no 'started'.
  assert.deepEqual(h.clients.events.types(id), ['done']);
});

test('an unknown language is internal_error with its code', async () => {
  const record = await run({ language: 'cobol', files: [{ name: 'main.cob', content: 'x' }] });
  assert.equal(record.verdict, 'internal_error');
  assert.equal(record.error?.code, 'language_unknown');
});

test('cancel of an active run: its sandbox is killed and the record says cancelled', async () => {
  const id = await enqueue(h.clients.queue, h.clients.redis, {
    language: 'python',
    source: 'import time\nprint("up", flush=True)\ntime.sleep(1000)\n',
    limits: { wallMs: 30_000 },
  });
  await waitForRecord(h.clients.redis, id, (r) => r.status === 'running');
  await h.clients.events.waitFor(id, 'compiled');
  await new Promise((r) => setTimeout(r, 300)); // well inside the sandbox by now
  assert.equal(storedStatus((await h.clients.redis.getBuffer(keys.run(id)))!), 'running', 'the API reads the status from the head');
  const askedAt = Date.now();
  await h.clients.redis.set(keys.cancel(id), '1', 'EX', 600);
  await h.clients.redis.publish(CANCEL_CHANNEL, id);
  const record = await waitForRecord(h.clients.redis, id, (r) => r.status !== 'running', 5_000);
  const tookMs = Date.now() - askedAt;
  assert.equal(record.status, 'cancelled');
  assert.equal(storedStatus((await h.clients.redis.getBuffer(keys.run(id)))!), 'cancelled', 'the API reads the status from the head');
  assert.equal(record.verdict, null);
  assert.ok(tookMs < 3000, `cancel took ${tookMs} ms`);
  await h.clients.events.waitFor(id, 'cancelled');
  assert.ok(!h.clients.events.types(id).includes('done'));
});

test('a run whose cancel was recorded before it started is cancelled without running', async () => {
  await h.clients.queue.pause();
  try {
    const id = await enqueue(h.clients.queue, h.clients.redis, { language: 'python', source: 'print("ran")\n' });
    await h.clients.redis.set(keys.cancel(id), '1', 'EX', 600);
    await h.clients.queue.resume();
    const record = await waitForRecord(h.clients.redis, id);
    assert.equal(record.status, 'cancelled');
    assert.equal(record.run, undefined);
    assert.equal(record.startedAt, undefined);
    assert.deepEqual(h.clients.events.types(id), ['cancelled']);
  } finally {
    await h.clients.queue.resume();
  }
});

test('the heartbeat lists the languages whose toolchains are here, with their versions', async () => {
  const json = await h.clients.redis.get(keys.worker(worker.workerId));
  assert.ok(json, 'no heartbeat');
  const heartbeat = JSON.parse(json) as WorkerHeartbeat;
  assert.equal(heartbeat.workerId, worker.workerId);
  assert.equal(heartbeat.pid, process.pid);
  assert.equal(heartbeat.slots, 2);
  assert.ok(Date.now() - heartbeat.at < HEARTBEAT_TTL_MS);
  const byName = new Map(heartbeat.languages.map((l) => [l.name, l]));
  assert.match(byName.get('python')?.version ?? '', /^Python 3\./);
  assert.match(byName.get('c')?.version ?? '', /gcc/i);
  assert.equal(byName.get('python')?.compileLimits, null);
  assert.ok(byName.get('c')!.compileLimits!.outputBytes <= MAX_COMPILE_OUTPUT_BYTES);
  assert.ok(byName.get('c')!.limits.cpuMs > 0);
  const ttlMs = await h.clients.redis.pttl(keys.worker(worker.workerId));
  assert.ok(ttlMs > 0 && ttlMs <= HEARTBEAT_TTL_MS, `heartbeat TTL ${ttlMs}`);
});

test('the callback URL receives the final record, signed', async () => {
  let resolveBody: (received: { body: string; headers: IncomingHttpHeaders }) => void;
  const received = new Promise<{ body: string; headers: IncomingHttpHeaders }>((r) => (resolveBody = r));
  const server = createServer((req, res) => {
    let body = '';
    req
      .setEncoding('utf8')
      .on('data', (d: string) => (body += d))
      .on('end', () => {
        res.end('ok');
        resolveBody({ body, headers: req.headers });
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const record = await run({ language: 'python', source: 'print(7)\n', callbackUrl: `http://127.0.0.1:${port}/hook`, limits: SMALL });
    const { body, headers } = await received;
    assert.deepEqual(JSON.parse(body), record);
    assert.equal(headers['webhook-id'], record.id);
    assert.equal(verifyCallback(CALLBACK_SECRET, headers, body), true);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a dead callback URL does not fail the run', async () => {
  const record = await run({ language: 'python', source: 'print(8)\n', callbackUrl: 'http://127.0.0.1:9/nothing-listens', limits: SMALL });
  assert.equal(record.verdict, 'ok');
});

test('/metrics is served with the run counters and phase durations', async () => {
  const response = await fetch(worker.metricsUrl);
  assert.equal(response.status, 200);
  const text = await response.text();
  assert.match(text, /brig_runs_total\{language="python",verdict="ok"\} [1-9]/);
  assert.match(text, /brig_runs_total\{language="c",verdict="compile_error"\} [1-9]/);
  for (const phase of ['queued', 'setup', 'compile', 'run', 'cleanup'])
    assert.match(text, new RegExp(`brig_phase_duration_seconds_count\\{phase="${phase}"\\} [1-9]`));
  // A job refused for its own content is not a sandbox error: it has its own counter.
  assert.doesNotMatch(text, /brig_sandbox_errors_total\{code="(limit_over_maximum|files_too_large)"\}/);
  assert.match(text, /brig_jobs_refused_total\{code="limit_over_maximum"\} 1/);
  assert.match(text, /brig_jobs_refused_total\{code="files_too_large"\} 1/);
  assert.match(text, /brig_run_cpu_seconds_count [1-9]/);
  assert.match(text, /brig_active_sandboxes 0/);
  assert.equal((await fetch(worker.metricsUrl.replace('/metrics', '/other'))).status, 404);
  assert.equal(QUEUE_NAME, 'brig-runs');
});
