/**
 * What the worker tests share: a real worker on a private state dir and
 * cgroup parent, jobs added the way the API adds them, and waits on the run
 * record in Redis.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { loadRuntimeConfig, loadServiceConfig, type ServiceConfig } from '../../../services/shared/config.ts';
import type { RuntimeConfig } from '../../../runtime/config.ts';
import { EVENTS_MAX_LEN, JOB_NAME, keys, QUEUE_NAME, type RunEvent, type RunJobData, type RunOutcome, type RunRecord } from '../../../services/shared/contract.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { createMetrics } from '../../../services/shared/metrics.ts';
import { startWorker, type BrigWorker, type WorkerTiming } from '../../../services/worker/worker.ts';

export const CGROUP_PARENT = `brig-test-${process.pid}`;
const CGROUP_ROOT = '/sys/fs/cgroup';
const STATE_DIR_MODE = 0o711;
/** What the API would add jobs with: one more attempt after a Brig-side failure. */
export const RUN_JOB_ATTEMPTS = 2;
const POLL_MS = 25;

/** A state dir under /tmp that sandboxes (unprivileged host uids) can traverse. */
export function makeStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-worker-'));
  chmodSync(dir, STATE_DIR_MODE);
  return dir;
}

export function testRuntimeConfig(stateDir: string, uidBase: number, overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return { ...loadRuntimeConfig({}), stateDir, cgroupParent: CGROUP_PARENT, uidBase, slots: 2, ...overrides };
}

export function testServiceConfig(redisUrl: string, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return loadServiceConfig({}, { redisUrl, host: '127.0.0.1', workerMetricsPort: 0, resultTtlSeconds: 600, logLevel: process.env.BRIG_TEST_LOG_LEVEL ?? 'silent', ...overrides });
}

export async function startTestWorker(opts: {
  redisUrl: string;
  stateDir: string;
  uidBase: number;
  runtime?: Partial<RuntimeConfig>;
  service?: Partial<ServiceConfig>;
  timing?: Partial<WorkerTiming>;
  workerId?: string;
}): Promise<BrigWorker> {
  const serviceConfig = testServiceConfig(opts.redisUrl, opts.service);
  return startWorker({
    runtimeConfig: testRuntimeConfig(opts.stateDir, opts.uidBase, opts.runtime),
    serviceConfig,
    redisUrl: opts.redisUrl,
    logger: createLogger({ level: serviceConfig.logLevel, name: 'brig-worker-test' }),
    metrics: createMetrics({ defaultMetrics: false }),
    workerId: opts.workerId,
    timing: opts.timing,
  });
}

let runCounter = 0;

export interface RunRequest {
  language: string;
  source?: string;
  files?: { name: string; content: string | Buffer }[];
  stdin?: string;
  args?: string[];
  limits?: RunJobData['limits'];
  tests?: { name: string; stdin: string; expected: string | Buffer }[];
  compare?: RunJobData['compare'];
  callbackUrl?: string;
}

const SOURCE_FILE: Record<string, string> = { python: 'main.py', c: 'main.c', cpp: 'main.cpp', bash: 'main.sh', node: 'main.js', java: 'Main.java' };
const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64');

/** Writes the queued record and adds the job, as the API does (contract step 1). */
export async function enqueue(queue: Queue, redis: Redis, request: RunRequest): Promise<string> {
  const id = `run-${process.pid}-${++runCounter}-${Date.now()}`;
  const files = request.files ?? [{ name: SOURCE_FILE[request.language]!, content: request.source ?? '' }];
  const data: RunJobData = {
    id,
    language: request.language,
    files: files.map((f) => ({ name: f.name, contentBase64: b64(f.content) })),
    stdinBase64: b64(request.stdin ?? ''),
    args: request.args ?? [],
    limits: request.limits ?? {},
    tests: (request.tests ?? []).map((t) => ({ name: t.name, stdinBase64: b64(t.stdin), expectedOutputBase64: b64(t.expected) })),
    compare: request.compare ?? 'trim',
    client: 'test',
    callbackUrl: request.callbackUrl,
    requestId: `req-${id}`,
    createdAt: Date.now(),
  };
  const record: RunRecord = { id, language: data.language, status: 'queued', verdict: null, compile: null, createdAt: data.createdAt };
  await redis.set(keys.run(id), JSON.stringify(record), 'EX', 600);
  await queue.add(JOB_NAME, data, { jobId: id, attempts: RUN_JOB_ATTEMPTS, removeOnComplete: false, removeOnFail: false });
  return id;
}

export async function readRecord(redis: Redis, id: string): Promise<RunRecord | null> {
  const json = await redis.get(keys.run(id));
  return json === null ? null : (JSON.parse(json) as RunRecord);
}

/** Polls the record until `until` holds; fails with the last record seen. */
export async function waitForRecord(redis: Redis, id: string, until: (r: RunRecord) => boolean = isFinal, timeoutMs = 20_000): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: RunRecord | null = null;
  while (Date.now() < deadline) {
    last = await readRecord(redis, id);
    if (last && until(last)) return last;
    await sleep(POLL_MS);
  }
  throw new Error(`run ${id} did not reach the expected state in ${timeoutMs} ms; last record: ${JSON.stringify(last)}`);
}

export const isFinal = (r: RunRecord) => r.status === 'done' || r.status === 'cancelled';

/** What the queue told about a run: its progress events, then its completion with the job's return value. */
export type LoggedEvent = Exclude<RunEvent, { type: 'done' }> | { type: 'done'; id: string; outcome: RunOutcome };

/** Every 'progress' event of the queue, by run id, in the order they arrived. */
export class EventLog {
  readonly byRun = new Map<string, LoggedEvent[]>();
  constructor(readonly queueEvents: QueueEvents) {
    queueEvents.on('progress', ({ jobId, data }) => this.add(jobId, data as LoggedEvent));
    // The job's completion is the final event: the API maps it the same way.
    queueEvents.on('completed', ({ jobId, returnvalue }) => {
      const outcome = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as RunOutcome;
      this.add(jobId, outcome.status === 'cancelled' ? { type: 'cancelled', id: jobId } : { type: 'done', id: jobId, outcome });
    });
  }

  private add(jobId: string, event: LoggedEvent): void {
    const list = this.byRun.get(jobId) ?? [];
    list.push(event);
    this.byRun.set(jobId, list);
  }

  types(id: string): string[] {
    return (this.byRun.get(id) ?? []).map((e) => e.type);
  }

  async waitFor(id: string, type: RunEvent['type'], timeoutMs = 20_000): Promise<LoggedEvent> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.byRun.get(id)?.find((e) => e.type === type);
      if (found) return found;
      await sleep(POLL_MS);
    }
    throw new Error(`no ${type} event for ${id} in ${timeoutMs} ms; got ${this.types(id).join(', ')}`);
  }
}

export interface Clients {
  redis: Redis;
  queue: Queue;
  queueEvents: QueueEvents;
  events: EventLog;
  close(): Promise<void>;
}

/** The API's side of the queue: a Redis client, a Queue and QueueEvents. */
export async function connectClients(redisUrl: string): Promise<Clients> {
  const redis = new Redis(redisUrl);
  // Every Queue writes the queue's metadata: this one must say what the API's says.
  const queue = new Queue(QUEUE_NAME, { connection: { url: redisUrl }, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const queueEvents = new QueueEvents(QUEUE_NAME, { connection: { url: redisUrl } });
  await queueEvents.waitUntilReady();
  return {
    redis,
    queue,
    queueEvents,
    events: new EventLog(queueEvents),
    async close() {
      await queueEvents.close();
      await queue.close();
      await redis.quit();
    },
  };
}

/** Slot cgroups still under this test process's parent, in any hierarchy. */
export function leftoverCgroups(): string[] {
  const found: string[] = [];
  for (const hierarchy of readdirSync(CGROUP_ROOT)) {
    const parent = join(CGROUP_ROOT, hierarchy, CGROUP_PARENT);
    if (!existsSync(parent)) continue;
    found.push(parent);
  }
  return found;
}

/** Runtime.close() keeps the parent (other workers may share it); tests remove theirs once it is empty. */
export function removeCgroupParent(): void {
  for (const dir of leftoverCgroups()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty: the test's assertion reports it
    }
  }
}

export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
