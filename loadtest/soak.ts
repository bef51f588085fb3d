/**
 * npm run soak -- --minutes N: does `brig serve` hold steady under a mixed load?
 *
 * Starts `brig serve` (API, worker and its private Redis) with a fresh state
 * dir and cgroup parent, drives a fixed number of concurrent
 * POST /v1/runs?wait=true with a mix of well-behaved and hostile programs,
 * checks each verdict, and once a minute prints what the service holds:
 * its RSS and fds, Redis memory, BullMQ's event stream, run records, mounts
 * and cgroups. At the end it stops the server with SIGTERM, checks that
 * nothing was left behind, and says whether memory and fds levelled off.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { keys, QUEUE_NAME } from '../services/shared/contract.ts';
import { redisConnectionOptions, scanKeys } from '../services/shared/redis.ts';
import { cgroupFolders, mountsUnder, openFdCount, processesNaming, rssBytes } from './host-state.ts';
import { privateRedisUrl, type ServeProcess, startServeProcess, stopServeProcess } from './serve-process.ts';

const USAGE = `Usage: npm run soak -- [--minutes N] [--concurrency C] [--ttl S] [--json FILE]

Runs \`brig serve\` under a mixed load of POST /v1/runs?wait=true for N minutes
(default 8, at least 2) at concurrency C (default 4), with results kept S
seconds (BRIG_RESULT_TTL_SECONDS, default 60). Prints one line a minute (and at
the start); --json FILE also writes them, and the verdict, as JSON lines.

Exit codes: 0 every check held (no wrong verdicts or failed requests, Redis
memory, RSS and fds levelled off, nothing left after SIGTERM); 1 one did not;
2 bad usage.
`;

const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;
/** BullMQ's default key prefix, which Brig does not change. */
const BULLMQ_PREFIX = 'bull';
const EVENTS_KEY = `${BULLMQ_PREFIX}:${QUEUE_NAME}:events`;
/** Sandbox uids of our own, away from the default 600000 of a `brig serve` that may run on this machine. */
const UID_BASE = 820_000;

const DEFAULT_MINUTES = 8;
/** The first minute is warm-up (records pile up until the TTL expires the first); judging needs a minute after it. */
const MIN_MINUTES = 2;
const DEFAULT_CONCURRENCY = 4;
const DEFAULT_TTL_SECONDS = 60;
const MS_PER_MINUTE = 60_000;
/** Samples for the trend are taken this often; one in every minute is printed. */
const SAMPLE_INTERVAL_MS = 5_000;
/** Growth over the judged window above this share of the peak means it did not level off. */
const GROWTH_MAX_SHARE_OF_PEAK = 0.1;
/** A trend needs a few points; fewer (a TTL as long as the soak) is no verdict. */
const MIN_TREND_SAMPLES = 3;
/** fds move by a few with HTTP keep-alive and Redis reconnects: below this many, growth is noise. */
const FD_GROWTH_SLACK = 8;
/** How long leftovers get to go away after the server exited (processes still being reaped). */
const LEFTOVER_SETTLE_MS = 2_000;
const MISMATCH_EXAMPLES_SHOWN = 3;
const BYTES_PER_MB = 1024 * 1024;
const KB_PER_MB = 1024;
const BYTES_PER_KB = 1024;

const HELLO_STDOUT = 'hello world\n';
/** The big-output program prints exactly this, and the run's outputBytes allows exactly this. */
const BIG_OUTPUT_BYTES = 2 * 1024 * 1024;
const MEMORY_BOMB_LIMIT_MB = 64;
const FORK_BOMB_PROCESSES = 16;
/** The fork bomb is stopped by its CPU time, spent by its processes retrying fork: keep it short. */
const FORK_BOMB_CPU_MS = 1_000;
const LOOP_CPU_MS = 500;

interface RunAnswer {
  verdict?: string;
  run?: { stdout?: string; truncated?: boolean } | null;
}

interface Kind {
  name: string;
  body: object;
  /** The verdicts an honest sandbox gives this program. */
  verdicts: string[];
  /** What else must hold of the answer; returns what is wrong, or null. */
  check?: (answer: RunAnswer) => string | null;
}

const helloOutput = (a: RunAnswer) => (a.run?.stdout === HELLO_STDOUT ? null : `stdout ${JSON.stringify(a.run?.stdout?.slice(0, 40))}`);

const KINDS: Kind[] = [
  { name: 'hello-py', body: { language: 'python', source: 'print("hello world")\n' }, verdicts: ['ok'], check: helloOutput },
  {
    name: 'hello-c',
    body: { language: 'c', source: '#include <stdio.h>\nint main(void) { puts("hello world"); return 0; }\n' },
    verdicts: ['ok'],
    check: helloOutput,
  },
  { name: 'hello-node', body: { language: 'node', source: 'console.log("hello world");\n' }, verdicts: ['ok'], check: helloOutput },
  {
    name: 'memory-bomb',
    // Each chunk is written to, so its pages are really charged to the cgroup.
    body: {
      language: 'python',
      source: 'chunks = []\nwhile True:\n    chunks.append(b"x" * (1 << 20))\n',
      limits: { memoryMb: MEMORY_BOMB_LIMIT_MB },
    },
    verdicts: ['memory_limit'],
  },
  {
    name: 'fork-bomb',
    // Every process forks for ever; pids.max refuses most forks, so the bomb burns CPU until its limit
    // (time_limit), unless the kernel ends it otherwise (runtime_error).
    body: {
      language: 'python',
      source: 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n',
      limits: { processes: FORK_BOMB_PROCESSES, cpuMs: FORK_BOMB_CPU_MS },
    },
    verdicts: ['time_limit', 'runtime_error'],
  },
  {
    name: 'loop',
    body: { language: 'python', source: 'while True:\n    pass\n', limits: { cpuMs: LOOP_CPU_MS } },
    verdicts: ['time_limit'],
  },
  {
    name: 'output-2mb',
    body: {
      language: 'python',
      source: `import sys\nsys.stdout.write("x" * ${BIG_OUTPUT_BYTES - 1} + "\\n")\n`,
      limits: { outputBytes: BIG_OUTPUT_BYTES },
    },
    verdicts: ['ok'],
    check: (a) =>
      a.run?.stdout?.length === BIG_OUTPUT_BYTES && !a.run.truncated
        ? null
        : `stdout of ${a.run?.stdout?.length} chars, truncated ${a.run?.truncated}`,
  },
];

interface Options {
  minutes: number;
  concurrency: number;
  ttlSeconds: number;
  jsonFile?: string;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      minutes: { type: 'string' },
      concurrency: { type: 'string' },
      ttl: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const positive = (name: string, text: string | undefined, fallback: number, integer: boolean) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value)))
      throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not ${JSON.stringify(text)}`);
    return value;
  };
  const minutes = positive('minutes', values.minutes, DEFAULT_MINUTES, false);
  if (minutes < MIN_MINUTES)
    throw new UsageError(
      `--minutes must be at least ${MIN_MINUTES}: the first minute is warm-up, and levelling off needs a minute after it`,
    );
  return {
    minutes,
    concurrency: positive('concurrency', values.concurrency, DEFAULT_CONCURRENCY, true),
    ttlSeconds: positive('ttl', values.ttl, DEFAULT_TTL_SECONDS, true),
    jsonFile: values.json,
  };
}

// ---------------------------------------------------------------- the load

interface Tally {
  doneByKind: Map<string, number>;
  mismatches: number;
  /** Answers other than 200: refusals, 5xx, and 202 (wait=true ran out of time). */
  non200: number;
  /** Requests that got no answer at all. */
  failedRequests: number;
  examples: string[];
}

function note(tally: Tally, example: string): void {
  if (tally.examples.length < MISMATCH_EXAMPLES_SHOWN) tally.examples.push(example);
}

async function drive(url: string, concurrency: number, until: () => boolean, tally: Tally): Promise<void> {
  let next = 0;
  const oneClient = async () => {
    while (!until()) {
      const kind = KINDS[next++ % KINDS.length]!;
      try {
        const response = await fetch(`${url}/v1/runs?wait=true`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(kind.body),
        });
        const text = await response.text();
        if (response.status !== 200) {
          tally.non200++;
          note(tally, `${kind.name}: HTTP ${response.status} ${text.slice(0, 200)}`);
          continue;
        }
        tally.doneByKind.set(kind.name, (tally.doneByKind.get(kind.name) ?? 0) + 1);
        const answer = JSON.parse(text) as RunAnswer;
        const wrong = !kind.verdicts.includes(answer.verdict ?? '') ? `verdict ${answer.verdict}` : (kind.check?.(answer) ?? null);
        if (wrong) {
          tally.mismatches++;
          note(tally, `${kind.name}: ${wrong} (expected ${kind.verdicts.join(' or ')})`);
        }
      } catch (error) {
        tally.failedRequests++;
        note(tally, `${kind.name}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, oneClient));
}

// ---------------------------------------------------------------- what the service holds

interface Sample {
  tMs: number;
  rssKb: number;
  fds: number;
  redisUsedBytes: number;
  eventsStreamLength: number;
  runRecords: number;
  mounts: number;
  cgroups: number;
}

async function sample(serve: ServeProcess, redis: Redis, startMs: number): Promise<Sample> {
  const pid = serve.child.pid!;
  const info = await redis.info('memory');
  return {
    tMs: Date.now() - startMs,
    rssKb: rssBytes(pid) / BYTES_PER_KB,
    fds: openFdCount(pid),
    redisUsedBytes: Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0),
    eventsStreamLength: await redis.xlen(EVENTS_KEY),
    runRecords: (await scanKeys(redis, keys.run('*'))).length,
    mounts: mountsUnder(serve.stateDir).length,
    cgroups: cgroupFolders(serve.cgroupParent).length,
  };
}

const mb = (bytes: number) => `${(bytes / BYTES_PER_MB).toFixed(1)} MB`;

const runsDone = (tally: Tally) => [...tally.doneByKind.values()].reduce((a, b) => a + b, 0);

/** `previousDone`: runs done at the last printed line, so that a change of pace shows (it moves Redis with it). */
function sampleLine(s: Sample, tally: Tally, previousDone: number): string {
  const minute = (s.tMs / MS_PER_MINUTE).toFixed(0).padStart(2);
  const done = runsDone(tally);
  const byKind = KINDS.map((k) => `${k.name} ${tally.doneByKind.get(k.name) ?? 0}`).join(', ');
  return (
    `min ${minute}  runs ${done} (+${done - previousDone}; ${byKind})  errors ${tally.mismatches + tally.non200 + tally.failedRequests}` +
    `  rss ${(s.rssKb / KB_PER_MB).toFixed(1)} MB  fds ${s.fds}  redis ${mb(s.redisUsedBytes)}  events ${s.eventsStreamLength}` +
    `  records ${s.runRecords}  mounts ${s.mounts}  cgroups ${s.cgroups}`
  );
}

// ---------------------------------------------------------------- the verdict

/**
 * Growth of a series over a window: the least-squares slope times the
 * window's length. A fit over every sample of the window, rather than last
 * minus first, so that one unlucky sample (a burst of 2 MB records alive at
 * that moment) neither hides a leak nor fakes one.
 */
function trendGrowth(points: { tMs: number; value: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanT = points.reduce((a, p) => a + p.tMs, 0) / n;
  const meanV = points.reduce((a, p) => a + p.value, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const p of points) {
    covariance += (p.tMs - meanT) * (p.value - meanV);
    variance += (p.tMs - meanT) ** 2;
  }
  return variance === 0 ? 0 : (covariance / variance) * (points.at(-1)!.tMs - points[0]!.tMs);
}

interface Level {
  name: string;
  held: boolean;
  text: string;
}

/**
 * Levelled off: over the judged window (the last half of the soak, but
 * never before warmUpMs, while records pile up until the TTL starts
 * expiring them), the fitted growth is under GROWTH_MAX_SHARE_OF_PEAK of the
 * peak (or under `slack`).
 */
function levelled(
  name: string,
  samples: Sample[],
  warmUpMs: number,
  value: (s: Sample) => number,
  format: (v: number) => string,
  slack = 0,
): Level {
  const endMs = samples.at(-1)!.tMs;
  const windowStartMs = Math.max(warmUpMs, endMs / 2);
  const window = samples.filter((s) => s.tMs >= windowStartMs).map((s) => ({ tMs: s.tMs, value: value(s) }));
  const peak = Math.max(...samples.map(value));
  const firstMinute = samples.filter((s) => s.tMs <= MS_PER_MINUTE);
  const firstMinuteGrowth = value(firstMinute.at(-1)!) - value(samples[0]!);
  const growth = trendGrowth(window);
  const allowed = Math.max(GROWTH_MAX_SHARE_OF_PEAK * peak, slack);
  const judged = window.length >= MIN_TREND_SAMPLES;
  const held = judged && growth < allowed;
  const fromMin = (windowStartMs / MS_PER_MINUTE).toFixed(1);
  const toMin = (endMs / MS_PER_MINUTE).toFixed(1);
  return {
    name,
    held,
    text:
      `${name}: start ${format(value(samples[0]!))}, first minute ${signed(firstMinuteGrowth, format)}, peak ${format(peak)}; ` +
      `fitted growth over minutes ${fromMin}-${toMin} (${window.length} samples) ${signed(growth, format)}, allowed < ${format(allowed)} ` +
      `(${GROWTH_MAX_SHARE_OF_PEAK * 100}% of the peak${slack ? ` or ${format(slack)}` : ''}): ${!judged ? 'TOO FEW SAMPLES to judge' : held ? 'levelled off' : 'STILL GROWING'}`,
  };
}

/** With its sign; a value that rounds to zero is +0, not -0. */
const signed = (v: number, format: (v: number) => string) =>
  v < 0 && format(-v) !== format(0) ? `-${format(-v)}` : `+${format(Math.abs(v))}`;

// ---------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return EXIT.OK;
    }
    options = parsed;
  } catch (error) {
    process.stderr.write(`soak: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const { minutes, concurrency, ttlSeconds, jsonFile } = options;
  if (jsonFile) writeFileSync(jsonFile, '');
  const record = (line: object) => {
    if (jsonFile) appendFileSync(jsonFile, `${JSON.stringify(line)}\n`);
  };

  console.log(
    `brig soak: ${minutes} min at concurrency ${concurrency}, result TTL ${ttlSeconds} s, kinds: ${KINDS.map((k) => k.name).join(', ')}`,
  );
  // Until the first records expire, Redis can only grow: the trend is judged after that.
  const warmUpMs = Math.max(MS_PER_MINUTE, ttlSeconds * 1000);
  if (warmUpMs > (minutes * MS_PER_MINUTE) / 2)
    console.log(`note: the TTL is over half the soak: the trend is judged only after ${warmUpMs / 1000} s`);
  const launchMs = Date.now();
  const serve = await startServeProcess({
    name: 'soak',
    uidBase: UID_BASE,
    env: { BRIG_RESULT_TTL_SECONDS: String(ttlSeconds) },
    // Its own process group: a Ctrl-C meant for the soak must not reach it, the soak stops it in order.
    detached: true,
  });
  console.log(
    `brig serve pid ${serve.child.pid} at ${serve.url}, ready in ${Date.now() - launchMs} ms; state dir ${serve.stateDir}, cgroup parent ${serve.cgroupParent}`,
  );
  const redis = new Redis({ ...redisConnectionOptions(privateRedisUrl(serve.stateDir)), maxRetriesPerRequest: 2 });
  redis.on('error', () => {}); // a failed sample throws by itself; ioredis would also print every reconnect

  const tally: Tally = { doneByKind: new Map(), mismatches: 0, non200: 0, failedRequests: 0, examples: [] };
  const samples: Sample[] = [];
  const startMs = Date.now();
  const endMs = startMs + minutes * MS_PER_MINUTE;
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    console.log('interrupted: stopping the load');
  });
  const stopLoad = () => interrupted || Date.now() >= endMs;

  let checksHeld = true;
  try {
    let doneAtLastLine = 0;
    const take = async (print: boolean) => {
      const s = await sample(serve, redis, startMs);
      samples.push(s);
      if (print) {
        console.log(sampleLine(s, tally, doneAtLastLine));
        doneAtLastLine = runsDone(tally);
        record({
          type: 'sample',
          minute: Math.round(s.tMs / MS_PER_MINUTE),
          done: Object.fromEntries(tally.doneByKind),
          mismatches: tally.mismatches,
          non200: tally.non200,
          failedRequests: tally.failedRequests,
          ...s,
        });
      }
    };
    await take(true);
    const load = drive(serve.url, concurrency, stopLoad, tally);
    // Samples on a fixed grid from the start, so that the printed ones fall on whole minutes.
    for (let i = 1; !stopLoad(); i++) {
      await sleep(Math.max(0, Math.min(startMs + i * SAMPLE_INTERVAL_MS, endMs) - Date.now()));
      if (interrupted) break;
      await take(Date.now() >= endMs || (i * SAMPLE_INTERVAL_MS) % MS_PER_MINUTE === 0);
    }
    await load;

    const errors = tally.mismatches + tally.non200 + tally.failedRequests;
    console.log(
      `\nanswers: ${errors} errors (${tally.mismatches} wrong verdicts or output, ${tally.non200} non-200, ${tally.failedRequests} without an answer)`,
    );
    for (const example of tally.examples) console.log(`  e.g. ${example}`);
    const levels = [
      levelled('redis used_memory', samples, warmUpMs, (s) => s.redisUsedBytes, mb),
      levelled('brig serve rss', samples, warmUpMs, (s) => s.rssKb * BYTES_PER_KB, mb),
      levelled(
        'brig serve fds',
        samples,
        warmUpMs,
        (s) => s.fds,
        (v) => v.toFixed(0),
        FD_GROWTH_SLACK,
      ),
    ];
    for (const level of levels) console.log(level.text);
    // Live records follow the pace (runs a minute × the TTL), and Redis with them: bytes per record
    // tells a faster pace from a leak.
    const judgedFrom = samples.find((s) => s.tMs >= Math.max(warmUpMs, samples.at(-1)!.tMs / 2)) ?? samples.at(-1)!;
    const perRecord = (s: Sample) => (s.runRecords > 0 ? `${(s.redisUsedBytes / s.runRecords / BYTES_PER_KB).toFixed(0)} KB` : 'n/a');
    console.log(
      `redis used_memory per live run record: ${perRecord(judgedFrom)} at minute ${(judgedFrom.tMs / MS_PER_MINUTE).toFixed(1)} (${judgedFrom.runRecords} records), ` +
        `${perRecord(samples.at(-1)!)} at the end (${samples.at(-1)!.runRecords} records)`,
    );
    checksHeld = errors === 0 && levels.every((l) => l.held) && !interrupted;
    record({ type: 'levels', errors, levels });
  } finally {
    redis.disconnect();
    checksHeld = (await stopAndCheck(serve, record)) && checksHeld;
  }
  console.log(checksHeld ? 'soak: every check held' : 'soak: FAILED (see above)');
  return checksHeld ? EXIT.OK : EXIT.FAILED;
}

/** Stops the server with SIGTERM, then looks for anything it left behind. */
async function stopAndCheck(serve: ServeProcess, record: (line: object) => void): Promise<boolean> {
  const stopped = await stopServeProcess(serve, { settleMs: LEFTOVER_SETTLE_MS });
  const left = {
    mounts: mountsUnder(serve.stateDir),
    cgroups: cgroupFolders(serve.cgroupParent),
    processes: processesNaming(serve.stateDir),
  };
  const clean = stopped.stoppedInTime && stopped.exitCode === 0 && Object.values(left).every((l) => l.length === 0);
  console.log(
    `after SIGTERM: exit code ${stopped.exitCode ?? stopped.signalCode} in ${stopped.stopMs} ms; ` +
      `left behind: ${left.mounts.length} mounts, ${left.cgroups.length} cgroup folders, ${left.processes.length} processes`,
  );
  for (const item of [...left.mounts, ...left.cgroups, ...left.processes]) console.log(`  left: ${item}`);
  record({ type: 'shutdown', exitCode: stopped.exitCode, stoppedInTime: stopped.stoppedInTime, left });
  return clean;
}

process.exitCode = await main(process.argv.slice(2));
