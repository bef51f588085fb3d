import { hostname } from 'node:os';
import { after, before } from 'node:test';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { RuntimeConfig } from '../../../runtime/config.ts';
import { type RunningApi, startApi } from '../../../services/api/server.ts';
import { loadRuntimeConfig, loadServiceConfig, type ServiceConfig } from '../../../services/shared/config.ts';
import {
  EVENTS_MAX_LEN,
  HEARTBEAT_TTL_MS,
  QUEUE_NAME,
  type RunEvent,
  type RunJobData,
  type RunOutcome,
  type RunRecord,
  type TestSummary,
  type TestView,
  type WorkerHeartbeat,
} from '../../../services/shared/contract.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { createMetrics } from '../../../services/shared/metrics.ts';
import { type JobLock, RunStore } from '../../../services/shared/run-store.ts';
import { publishHeartbeat } from '../../../services/shared/worker-registry.ts';
import { jobLock } from '../../../services/worker/job-lock.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

/**
 * The API on a real redis-server and real HTTP, with the worker side
 * simulated at the Redis/BullMQ edge: heartbeat keys written by the test, and
 * BullMQ workers in the test process whose processors write records and
 * report progress as the contract says.
 */
export interface ApiHarness {
  url: string;
  /** The API's port on 127.0.0.1, for raw-socket requests. */
  port: number;
  api: RunningApi;
  config: ServiceConfig;
  runtimeConfig: RuntimeConfig;
  /** A command connection of the test's own. */
  redis: Redis;
  queue: Queue<RunJobData, RunOutcome>;
  /** Publishes a fresh heartbeat of a worker that runs these languages. */
  heartbeat(languages?: string[], workerId?: string): Promise<void>;
  /** A BullMQ worker in the test process; closed by close() if not before. */
  /** The run store, as a worker uses it: its final write releases the run's admission. */
  store: RunStore;
  /** The processor gets the job's lock, which the store's worker-side writes need. */
  worker(processor: (job: Job<RunJobData, RunOutcome>, lock: JobLock) => Promise<RunOutcome>): Worker<RunJobData, RunOutcome>;
  fetch(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** The default file names of the languages a simulated worker offers. */
const SOURCE_FILES: Record<string, string> = {
  python: 'main.py',
  c: 'main.c',
  cpp: 'main.cpp',
  java: 'Main.java',
  node: 'main.js',
  bash: 'main.sh',
};

export async function startHarness(redisServer: TestRedis, overrides: Partial<Record<string, unknown>> = {}): Promise<ApiHarness> {
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  // Each harness starts from an empty Redis: counters, records and jobs of an earlier one must not leak in.
  await redis.flushall();
  const config = loadServiceConfig({}, { redisUrl: redisServer.url, port: 0, host: '127.0.0.1', logLevel: 'silent', ...overrides });
  const runtimeConfig = loadRuntimeConfig({});
  const api = await startApi({
    config,
    logger: createLogger({ level: 'silent', name: 'test-api' }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  // Every Queue writes the queue's metadata: this one must say what the API's says.
  const queue = new Queue<RunJobData, RunOutcome>(QUEUE_NAME, { connection: redis, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const workers: Worker<RunJobData, RunOutcome>[] = [];
  return {
    url: api.url,
    port: Number(new URL(api.url).port),
    api,
    config,
    runtimeConfig,
    redis,
    queue,
    store: new RunStore(redis, config.resultTtlSeconds),
    async heartbeat(languages = ['python', 'c'], workerId = 'test-worker') {
      const now = Date.now();
      const heartbeat: WorkerHeartbeat = {
        workerId,
        hostname: hostname(),
        pid: process.pid,
        slots: 1,
        activeRuns: 0,
        startedAt: now,
        at: now,
        // A language without a known file name plays a worker older than the field (only files can be sent to it).
        languages: languages.map((name) => ({
          name,
          displayName: name.toUpperCase(),
          version: '1.0.0',
          sourceFile: SOURCE_FILES[name]!,
          limits: runtimeConfig.defaults,
          compileLimits: null,
          maxLimits: runtimeConfig.maxima,
        })),
      };
      await publishHeartbeat(redis, heartbeat, HEARTBEAT_TTL_MS);
    },
    worker(processor) {
      const worker = new Worker<RunJobData, RunOutcome>(QUEUE_NAME, (job, token) => processor(job, jobLock(job, token!)), {
        connection: { url: redisServer.url, maxRetriesPerRequest: null },
        name: 'test-worker',
      });
      worker.on('error', () => {});
      workers.push(worker);
      return worker;
    },
    fetch(path, init = {}) {
      const { json, ...rest } = init;
      if (json === undefined) return fetch(api.url + path, rest);
      return fetch(api.url + path, {
        method: 'POST',
        ...rest,
        headers: { 'content-type': 'application/json', ...(rest.headers as Record<string, string> | undefined) },
        body: JSON.stringify(json),
      });
    },
    async close() {
      for (const worker of workers) await worker.close();
      await api.close();
      await queue.close();
      await redis.quit();
    },
  };
}

/**
 * A redis-server for the whole test file, as hooks of the file: started
 * before its first test, stopped after its last. The object is filled in by
 * the before hook. Harnesses on it are closed in their describe block's
 * after() or in the test: a file's top-level after() hooks run in the order
 * they were registered, so one registered after this would find Redis gone.
 */
export function redisServerForFile(): TestRedis {
  const server = {} as TestRedis;
  before(async () => {
    Object.assign(server, await startRedis());
  });
  after(async () => {
    await server.stop?.();
  });
  return server;
}

/**
 * The setup of a file whose tests share one harness: a redis-server and the
 * harness on it with `overrides`, started before the first test (then
 * `setUp`, a heartbeat say) and closed after the last. The object is filled
 * in by the before hook; Node 20 starts a file's top-level before() hooks
 * side by side, so work that needs the harness first goes in `setUp`.
 */
export function harnessForFile(overrides: Partial<Record<string, unknown>>, setUp?: (h: ApiHarness) => Promise<void>): ApiHarness {
  const h = {} as ApiHarness;
  let redisServer: TestRedis | undefined;
  before(async () => {
    redisServer = await startRedis();
    Object.assign(h, await startHarness(redisServer, overrides));
    await setUp?.(h);
  });
  after(async () => {
    await h.close?.();
    await redisServer?.stop();
  });
  return h;
}

/**
 * A processor that plays a worker judging the run, as the contract says:
 * running record with its progress, started, compiled, one test event per
 * test (each ok; summaries, no output), then the final record written once
 * (which releases the run's admission), and the outcome returned. stepMs
 * spaces the events out.
 */
export function judgeEverythingOk(redis: Redis, ttlSeconds: number, stepMs = 0) {
  const store = new RunStore(redis, ttlSeconds);
  return async (job: Job<RunJobData, RunOutcome>, lock: JobLock): Promise<RunOutcome> => {
    const data = job.data;
    const pause = () => new Promise((resolve) => setTimeout(resolve, stepMs));
    const running: RunRecord = {
      id: data.id,
      language: data.language,
      status: 'running',
      verdict: null,
      compile: null,
      createdAt: data.createdAt,
      startedAt: Date.now(),
    };
    const progress = { workerId: 'test-worker', tests: [] as TestSummary[] };
    await store.start({ ...running, progress }, lock, [{ type: 'started', id: data.id, workerId: 'test-worker' }]);
    await pause();
    await store.progress({ ...running, progress: { ...progress, compile: null } }, lock, { type: 'compiled', id: data.id, compile: null });
    const tests: TestView[] = [];
    for (const [index, test] of data.tests.entries()) {
      await pause();
      const summary: TestSummary = {
        name: test.name,
        verdict: 'ok',
        exitCode: 0,
        signal: null,
        cpuMs: 1,
        wallMs: 2,
        memoryKb: 1024,
        maxRssKb: 1400,
        truncated: false,
      };
      tests.push({ ...summary, stdout: Buffer.from(test.expectedOutputBase64, 'base64').toString(), stderr: '' });
      progress.tests.push(summary);
      await store.progress({ ...running, progress: { ...progress, compile: null } }, lock, {
        type: 'test',
        id: data.id,
        index,
        test: summary,
      });
    }
    const record: RunRecord = { ...running, status: 'done', verdict: 'ok', tests, finishedAt: Date.now() };
    await store.putFinal(record, lock);
    return { id: record.id, status: record.status, verdict: record.verdict };
  };
}

/** Reads a text/event-stream response to its end: the events in order. */
export async function readEvents(response: Response): Promise<{ type: string; data: RunEvent }[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event:'))
    .map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return { type: eventLine!.slice('event: '.length), data: JSON.parse(dataLine!.slice('data: '.length)) as RunEvent };
    });
}

export const PYTHON_HELLO = { language: 'python', source: 'print("hello")' };
