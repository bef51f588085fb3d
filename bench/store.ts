/**
 * npm run bench:store — what Redis holds for one run, per byte of output.
 *
 * The largest run the server allows by default keeps BRIG_MAX_RUN_OUTPUT_BYTES
 * (16 MiB) of output. This sends judge-mode python runs that use that whole
 * budget, in two shapes (16 tests of 1 MiB, 100 tests of 1/100 of it) and
 * three kinds of output: plain ASCII text, control characters (valid UTF-8
 * that JSON would escape six-fold, so Brig stores it as base64) and bytes
 * that are not UTF-8 (base64). Every test prints exactly its outputBytes: at
 * the limit, not past it, so no test is cut or killed (the verdicts are
 * wrong_answer: the expected outputs are empty, as 16 MiB of them would not
 * fit in a request body). Each run is awaited two ways (see Way), and each
 * gets a fresh `brig serve` (API, worker, private Redis), so that every
 * row's RSS starts from the same small heap.
 *
 * For each run it prints the output bytes the record keeps, the record's
 * JSON length and MEMORY USAGE, Redis used_memory before, at its peak during
 * the run, and after (a few seconds later, once Redis has shrunk the worker's
 * query buffer), BullMQ's event stream (XLEN, MEMORY USAGE), and the RSS of
 * the `brig serve` process before, at its peak and after (sampled every
 * 50 ms); each as a ratio to the output bytes of the same run. The design
 * promises each output stored once, in the record, as text or base64: at
 * most about 2× the output.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { rssBytes } from '../loadtest/host-state.ts';
import { privateRedisUrl, type ServeProcess, startServeProcess, stopServeProcess } from '../loadtest/serve-process.ts';
import { keys, QUEUE_NAME, type RunRecord } from '../services/shared/contract.ts';
import { redisConnectionOptions } from '../services/shared/redis.ts';

/** BullMQ's default key prefix, which Brig does not change. */
const EVENTS_KEY = `bull:${QUEUE_NAME}:events`;
/** Sandbox uids of our own, away from the default of a `brig serve` that may run on this machine. */
const UID_BASE = 820_000;
/** BRIG_MAX_RUN_OUTPUT_BYTES's default: the budget each run uses up. */
const RUN_OUTPUT_BUDGET_BYTES = 16 * 1024 * 1024;
/** 100 tests × this stays under BRIG_MAX_RUN_WALL_MS (5 min); printing a few hundred KiB takes far less. */
const WALL_MS_PER_TEST = 3_000;
const TEST_COUNTS = [16, 100];
const WARM_UP_OUTPUT_BYTES = 2 * 1024;
/** A wait=true run of 100 sandboxes can outlast the default 30 s wait. */
const WAIT_TIMEOUT_MS = 300_000;
const SAMPLE_INTERVAL_MS = 50;
/**
 * Redis shrinks an idle client's query buffer (which held the 20 MB script
 * call that wrote the record) from its cron, within a couple of seconds:
 * what it holds after that is what a run costs while its record lives.
 */
const SETTLE_MS = 3_000;
const BYTES_PER_MB = 1024 * 1024;
const BYTES_PER_KB = 1024;

/** Python expressions of the repeated unit each kind of output is made of. */
const OUTPUT_KINDS = [
  { name: 'ascii', unit: 'b"The quick brown fox jumps over the lazy dog, 0123456789.\\n"' },
  { name: 'control', unit: 'bytes(range(0x20))' },
  { name: 'non-utf8', unit: 'bytes(range(0x80, 0x100))' },
];

const programPrinting = (bytes: number, unit: string) =>
  `import sys\nunit = ${unit}\nsys.stdout.buffer.write((unit * (${bytes} // len(unit) + 1))[:${bytes}])\n`;

// ---------------------------------------------------------------- the server

interface Serve extends ServeProcess {
  /** Its private Redis, for measuring. */
  redis: Redis;
  /** A second connection for the peak sampler, so that its INFOs never queue behind the measuring commands. */
  sampler: Redis;
}

async function startServe(): Promise<Serve> {
  const serve = await startServeProcess({ name: 'bench-store', uidBase: UID_BASE, env: { BRIG_WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS) } });
  const socket = { ...redisConnectionOptions(privateRedisUrl(serve.stateDir)), maxRetriesPerRequest: 2 };
  return { ...serve, redis: new Redis(socket), sampler: new Redis(socket) };
}

async function stopServe(serve: Serve): Promise<void> {
  serve.redis.disconnect();
  serve.sampler.disconnect();
  await stopServeProcess(serve);
}

// ---------------------------------------------------------------- measuring

/** Bytes a step's outputs stand for, decoded from text or base64. */
function outputBytesOf(step: { stdout: string; stderr: string; stdoutEncoding?: 'base64'; stderrEncoding?: 'base64' }): number {
  const size = (text: string, encoding?: 'base64') =>
    encoding === 'base64' ? Buffer.from(text, 'base64').length : Buffer.byteLength(text);
  return size(step.stdout, step.stdoutEncoding) + size(step.stderr, step.stderrEncoding);
}

/** Redis's memory, and the parts of it that are only passing through: client buffers and the append-only file's buffer. */
interface RedisMemory {
  usedBytes: number;
  clientBuffersBytes: number;
  aofBufferBytes: number;
}

async function redisMemory(redis: Redis): Promise<RedisMemory> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { usedBytes: field('used_memory'), clientBuffersBytes: field('mem_clients_normal'), aofBufferBytes: field('mem_aof_buffer') };
}

/** Samples read() every SAMPLE_INTERVAL_MS until stop(), which gives the sample with the largest size(). */
function peakSampler<T>(read: () => Promise<T>, size: (sample: T) => number): { stop: () => Promise<T | null> } {
  let peak: T | null = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      const sample = await read();
      if (peak === null || size(sample) > size(peak)) peak = sample;
      await sleep(SAMPLE_INTERVAL_MS);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

/**
 * How the run's end is awaited: 'wait' as users do (POST ?wait=true, so the
 * same process also reads the record back and sends it as the answer), or
 * 'poll' (POST, then watch the record's status in Redis), which leaves the
 * process only the worker's share.
 */
type Way = 'wait' | 'poll';
const WAYS: Way[] = ['wait', 'poll'];
/** The record's JSON starts {"id":…,"language":…,"status":…: its first bytes tell whether it is final. */
const RECORD_HEAD_BYTES = 256;
const FINAL_STATUS = /"status":"(done|cancelled)"/;

async function runToTheEnd(serve: Serve, redis: Redis, way: Way, body: object): Promise<string> {
  const response = await fetch(`${serve.url}/v1/runs${way === 'wait' ? '?wait=true' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as RunRecord;
  const expected = way === 'wait' ? 200 : 202;
  if (response.status !== expected || (way === 'wait' && answer.status !== 'done'))
    throw new Error(`HTTP ${response.status}, ${JSON.stringify(answer).slice(0, 300)}`);
  // GETRANGE of the head: reading the whole 20 MB record at each poll would itself fill Redis's buffers.
  for (
    const deadline = Date.now() + WAIT_TIMEOUT_MS;
    way === 'poll' && !FINAL_STATUS.test(await redis.getrange(keys.run(answer.id), 0, RECORD_HEAD_BYTES));
  ) {
    if (Date.now() > deadline) throw new Error(`run ${answer.id} did not end within ${WAIT_TIMEOUT_MS} ms`);
    await sleep(SAMPLE_INTERVAL_MS);
  }
  return answer.id;
}

interface Measurement {
  name: string;
  way: Way;
  outputBytes: number;
  encodings: string;
  recordBytes: number;
  /** The record's JSON, without Redis's allocation rounding. */
  recordJsonBytes: number;
  redisBefore: number;
  redisPeak: RedisMemory;
  redisAfter: number;
  eventsLength: [number, number];
  eventsBytes: [number, number];
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  seconds: number;
}

async function measure(serve: Serve, name: string, way: Way, body: object): Promise<Measurement> {
  const pid = serve.child.pid!;
  await sleep(SETTLE_MS);
  const { redis, sampler } = serve;
  const redisBefore = await redisMemory(redis);
  const eventsBefore = [await redis.xlen(EVENTS_KEY), Number((await redis.memory('USAGE', EVENTS_KEY, 'SAMPLES', 0)) ?? 0)];
  const rssBefore = rssBytes(pid);
  const rssPeak = peakSampler(
    async () => rssBytes(pid),
    (rss) => rss,
  );
  const redisPeak = peakSampler(
    () => redisMemory(sampler),
    (m) => m.usedBytes,
  );
  const startMs = Date.now();
  const id = await runToTheEnd(serve, redis, way, body).catch((error: Error) => {
    throw new Error(`${name}: ${error.message}`);
  });
  const seconds = (Date.now() - startMs) / 1000;
  const peaks = { rss: (await rssPeak.stop()) ?? rssBefore, redis: (await redisPeak.stop()) ?? redisBefore };
  await sleep(SETTLE_MS);
  const key = keys.run(id);
  const stored = JSON.parse((await redis.get(key))!) as RunRecord;
  const tests = stored.tests ?? [];
  const cut = tests.filter((t) => t.truncated || t.verdict === 'output_limit').length;
  if (cut > 0) console.log(`note: ${name}: ${cut} tests were cut at their limit`);
  return {
    name,
    way,
    outputBytes: tests.reduce((sum, t) => sum + outputBytesOf(t), 0),
    encodings: [...new Set(tests.map((t) => t.stdoutEncoding ?? 'text'))].join('+'),
    recordBytes: Number(await redis.memory('USAGE', key, 'SAMPLES', 0)),
    recordJsonBytes: await redis.strlen(key),
    redisBefore: redisBefore.usedBytes,
    redisPeak: peaks.redis.usedBytes > redisBefore.usedBytes ? peaks.redis : redisBefore,
    redisAfter: (await redisMemory(redis)).usedBytes,
    eventsLength: [eventsBefore[0]!, await redis.xlen(EVENTS_KEY)],
    eventsBytes: [eventsBefore[1]!, Number((await redis.memory('USAGE', EVENTS_KEY, 'SAMPLES', 0)) ?? 0)],
    rssBefore,
    rssPeak: Math.max(peaks.rss, rssBefore),
    rssAfter: rssBytes(pid),
    seconds,
  };
}

// ---------------------------------------------------------------- the table

const mb = (bytes: number) => (bytes / BYTES_PER_MB).toFixed(1);
const ratio = (bytes: number, output: number) => `${(bytes / output).toFixed(2)}×`;

function printTable(rows: Measurement[]): void {
  const header = [
    'run',
    'way',
    'output MB',
    'stored as',
    'JSON MB',
    'record MB',
    'record/out',
    'redis before→peak→after MB',
    'Δafter/out',
    'Δpeak/out',
    'at peak: clients, aof MB',
    'events len',
    'events Δ KB',
    'rss before→peak→after MB',
    'rss Δpeak/out',
    's',
  ];
  const lines = rows.map((m) => [
    m.name,
    m.way,
    mb(m.outputBytes),
    m.encodings,
    mb(m.recordJsonBytes),
    mb(m.recordBytes),
    ratio(m.recordBytes, m.outputBytes),
    `${mb(m.redisBefore)}→${mb(m.redisPeak.usedBytes)}→${mb(m.redisAfter)}`,
    ratio(m.redisAfter - m.redisBefore, m.outputBytes),
    ratio(m.redisPeak.usedBytes - m.redisBefore, m.outputBytes),
    `${mb(m.redisPeak.clientBuffersBytes)}, ${mb(m.redisPeak.aofBufferBytes)}`,
    `${m.eventsLength[0]}→${m.eventsLength[1]}`,
    ((m.eventsBytes[1] - m.eventsBytes[0]) / BYTES_PER_KB).toFixed(1),
    `${mb(m.rssBefore)}→${mb(m.rssPeak)}→${mb(m.rssAfter)}`,
    ratio(m.rssPeak - m.rssBefore, m.outputBytes),
    m.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(row(header));
  console.log(row(widths.map((w) => '-'.repeat(w))));
  for (const line of lines) console.log(row(line));
}

// ---------------------------------------------------------------- main

function judgeRun(tests: number, unit: string, outputBytes = RUN_OUTPUT_BUDGET_BYTES): object {
  const bytesPerTest = Math.floor(outputBytes / tests);
  return {
    language: 'python',
    source: programPrinting(bytesPerTest, unit),
    limits: { outputBytes: bytesPerTest, wallMs: WALL_MS_PER_TEST },
    tests: Array.from({ length: tests }, (_, i) => ({ name: `t${i + 1}`, expectedOutput: '' })),
  };
}

/** One run on a fresh `brig serve`, so that every row's RSS starts from a heap no big run has grown yet. */
async function measureFresh(name: string, way: Way, body: object): Promise<Measurement> {
  const serve = await startServe();
  try {
    // Warm-up: code paths compiled and the language loaded, but small, so that
    // the measured run still shows what a fresh heap grows by.
    await runToTheEnd(serve, serve.redis, way, judgeRun(2, OUTPUT_KINDS[0]!.unit, WARM_UP_OUTPUT_BYTES));
    return await measure(serve, name, way, body);
  } finally {
    await stopServe(serve);
  }
}

async function main(): Promise<void> {
  console.log(
    `brig bench:store: judge-mode python runs keeping ${mb(RUN_OUTPUT_BUDGET_BYTES)} MB of output each (BRIG_MAX_RUN_OUTPUT_BYTES), ` +
      'every test printing exactly its outputBytes; each run on a fresh brig serve',
  );
  const rows: Measurement[] = [];
  for (const tests of TEST_COUNTS) {
    for (const kind of OUTPUT_KINDS) {
      for (const way of WAYS) {
        const name = `${tests}×${(RUN_OUTPUT_BUDGET_BYTES / tests / BYTES_PER_KB).toFixed(0)}KiB ${kind.name}`;
        rows.push(await measureFresh(name, way, judgeRun(tests, kind.unit)));
        console.log(`done: ${name} (${way})`);
      }
    }
  }
  console.log('');
  printTable(rows);
  const perOutput = (m: Measurement) => (m.redisAfter - m.redisBefore) / m.outputBytes;
  const worst = rows.reduce((a, b) => (perOutput(b) > perOutput(a) ? b : a));
  console.log(
    `\nmost Redis bytes held per output byte: ${perOutput(worst).toFixed(2)}× (${worst.name}, ${worst.way}); the design's bound is about 2×`,
  );
}

await main();
