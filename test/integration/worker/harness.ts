/**
 * What the worker tests share: a real redis-server, a private state dir and
 * cgroup parent, real workers on them running as the file's host uids, jobs
 * added the way the API adds them, and waits on the run record in Redis.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { RuntimeConfig } from '../../../runtime/config.ts';
import { loadRuntimeConfig, loadServiceConfig, type ServiceConfig } from '../../../services/shared/config.ts';
import {
  EVENTS_MAX_LEN,
  JOB_NAME,
  keys,
  type PublishedSignal,
  QUEUE_NAME,
  RUN_EVENTS_CHANNEL,
  type RunJobData,
  type RunRecord,
} from '../../../services/shared/contract.ts';
import { createLogger, type Logger } from '../../../services/shared/logger.ts';
import { createMetrics } from '../../../services/shared/metrics.ts';
import { type BrigWorker, startWorker, type WorkerTiming } from '../../../services/worker/worker.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { type UidOwner, uidBase } from '../../helpers/uid-bases.ts';

export const CGROUP_PARENT = `brig-test-${process.pid}`;
const CGROUP_ROOT = '/sys/fs/cgroup';
const STATE_DIR_MODE = 0o711;
/** What the API would add jobs with: one more attempt after a Brig-side failure. */
export const RUN_JOB_ATTEMPTS = 2;
const POLL_MS = 25;

/** Slots per worker: enough for a run and a second one queued behind it. */
const WORKER_SLOTS = 2;

/** A state dir under /tmp that sandboxes (unprivileged host uids) can traverse. */
function makeStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-worker-'));
  chmodSync(dir, STATE_DIR_MODE);
  return dir;
}

/** A worker's service configuration on `redisUrl`: loopback, a free metrics port, quiet unless BRIG_TEST_LOG_LEVEL says otherwise. */
export function testServiceConfig(redisUrl: string, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return loadServiceConfig(
    {},
    {
      redisUrl,
      host: '127.0.0.1',
      workerMetricsPort: 0,
      resultTtlSeconds: 600,
      logLevel: process.env.BRIG_TEST_LOG_LEVEL ?? 'silent',
      ...overrides,
    },
  );
}

export interface WorkerOverrides {
  runtime?: Partial<RuntimeConfig>;
  service?: Partial<ServiceConfig>;
  timing?: Partial<WorkerTiming>;
  workerId?: string;
  /** Where the worker logs; by default a logger at serviceConfig.logLevel. */
  logger?: Logger;
}

/** One worker test file's Redis, state dir and workers; the fields are set before the file's first test. */
export interface WorkerHarness {
  redis: TestRedis;
  stateDir: string;
  /** The API's side of the queue. */
  clients: Clients;
  /** A worker's runtime configuration: the file's state dir, the test cgroup parent and the file's host uids. */
  runtimeConfig(overrides?: Partial<RuntimeConfig>): RuntimeConfig;
  /** A worker's service configuration on the file's Redis. */
  serviceConfig(overrides?: Partial<ServiceConfig>): ServiceConfig;
  /**
   * A worker in this process on the file's Redis, state dir and uids, once
   * they are up; after the last test it is closed, if the test did not.
   */
  startWorker(overrides?: WorkerOverrides): Promise<BrigWorker>;
}

/**
 * The setup every worker test file shares, as hooks of the file: before its
 * first test a redis-server, a state dir and the API's clients; after its
 * last, every worker it started closed, the clients and Redis stopped, the
 * cgroup parent and state dir removed, and a check that no cgroup was left
 * behind. `uids` names the file's entry in test/helpers/uid-bases.ts.
 */
export function workerHarnessForFile(uids: UidOwner): WorkerHarness {
  const workers: BrigWorker[] = [];
  let setUp: Promise<void> | undefined;
  // Node 20 starts a file's top-level before() hooks side by side, so a
  // file's own hook that starts a worker waits for this one here.
  const ready = () =>
    (setUp ??= (async () => {
      harness.redis = await startRedis();
      harness.stateDir = makeStateDir();
      harness.clients = await connectClients(harness.redis.url);
    })());
  const harness: WorkerHarness = {
    redis: undefined as unknown as TestRedis,
    stateDir: '',
    clients: undefined as unknown as Clients,
    runtimeConfig(overrides = {}) {
      const slots = overrides.slots ?? WORKER_SLOTS;
      return {
        ...loadRuntimeConfig({}),
        stateDir: harness.stateDir,
        cgroupParent: CGROUP_PARENT,
        uidBase: uidBase(uids, slots),
        slots,
        ...overrides,
      };
    },
    serviceConfig(overrides = {}) {
      return testServiceConfig(harness.redis.url, overrides);
    },
    async startWorker(overrides = {}) {
      await ready();
      const serviceConfig = harness.serviceConfig(overrides.service);
      const worker = await startWorker({
        runtimeConfig: harness.runtimeConfig(overrides.runtime),
        serviceConfig,
        redisUrl: harness.redis.url,
        logger: overrides.logger ?? createLogger({ level: serviceConfig.logLevel, name: 'brig-worker-test' }),
        metrics: createMetrics({ defaultMetrics: false }),
        workerId: overrides.workerId,
        timing: overrides.timing,
      });
      workers.push(worker);
      return worker;
    },
  };
  before(ready);
  after(async () => {
    // close() is idempotent: a worker the test closed already returns at once.
    for (const worker of workers) await worker.close();
    await harness.clients?.close();
    await harness.redis?.stop();
    removeCgroupParent();
    if (harness.stateDir) rmSync(harness.stateDir, { recursive: true, force: true });
    assert.deepEqual(leftoverCgroups(), [], 'a worker left cgroups behind');
  });
  return harness;
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

const SOURCE_FILE: Record<string, string> = {
  python: 'main.py',
  c: 'main.c',
  cpp: 'main.cpp',
  bash: 'main.sh',
  node: 'main.js',
  java: 'Main.java',
};
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
export async function waitForRecord(
  redis: Redis,
  id: string,
  until: (r: RunRecord) => boolean = isFinal,
  timeoutMs = 20_000,
): Promise<RunRecord> {
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

/** What a run announced on RUN_EVENTS_CHANNEL, as the API hears it. */
export type LoggedEvent = PublishedSignal;

/** Every signal on RUN_EVENTS_CHANNEL, by run id, in the order they arrived. */
export class EventLog {
  readonly byRun = new Map<string, LoggedEvent[]>();
  constructor(subscriber: Redis) {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === RUN_EVENTS_CHANNEL) this.add(JSON.parse(message) as LoggedEvent);
    });
  }

  private add(event: LoggedEvent): void {
    const list = this.byRun.get(event.id) ?? [];
    list.push(event);
    this.byRun.set(event.id, list);
  }

  types(id: string): string[] {
    return (this.byRun.get(id) ?? []).map((e) => e.type);
  }

  async waitFor(id: string, type: LoggedEvent['type'], timeoutMs = 20_000): Promise<LoggedEvent> {
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

/** The API's side of the queue: a Redis client, a Queue, the run events and BullMQ's own (QueueEvents, for job completion). */
export async function connectClients(redisUrl: string): Promise<Clients> {
  const redis = new Redis(redisUrl);
  // Every Queue writes the queue's metadata: this one must say what the API's says.
  const queue = new Queue(QUEUE_NAME, { connection: { url: redisUrl }, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const queueEvents = new QueueEvents(QUEUE_NAME, { connection: { url: redisUrl } });
  const subscriber = new Redis(redisUrl);
  const events = new EventLog(subscriber);
  await Promise.all([queueEvents.waitUntilReady(), subscriber.subscribe(RUN_EVENTS_CHANNEL)]);
  return {
    redis,
    queue,
    queueEvents,
    events,
    async close() {
      await queueEvents.close();
      await queue.close();
      await subscriber.quit();
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
function removeCgroupParent(): void {
  for (const dir of leftoverCgroups()) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty: the test's assertion reports it
    }
  }
}
