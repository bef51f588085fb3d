import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RunningApi, startApi } from '../../services/api/server.ts';
import { loadServiceConfig } from '../../services/shared/config.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { startRedis, type TestRedis } from './redis.ts';
import { type UidOwner, uidBase } from './uid-bases.ts';

const BRIG = new URL('../../bin/brig.js', import.meta.url).pathname;

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface TestService {
  redis: TestRedis;
  api: RunningApi;
  url: string;
  env: Record<string, string>;
  stateDir: string;
  cgroupParent: string;
  workers: WorkerProcess[];
  /** Starts one more `brig worker` process sharing Redis, the state dir and the cgroup parent. */
  startWorker(): Promise<WorkerProcess>;
  close(): Promise<void>;
}

/**
 * The service as users run it: a real redis-server, the API in this process
 * (real HTTP on a free port) and `brig worker` processes started from the
 * command line, all sharing one state dir and cgroup parent, as workers on
 * one machine do, and the host uids the table gives `uids`.
 */
export async function startService(opts: {
  uids: UidOwner;
  workers: number;
  slotsPerWorker: number;
  env?: Record<string, string>;
}): Promise<TestService> {
  const redis = await startRedis();
  const stateDir = mkdtempSync(join(tmpdir(), 'brig-test-e2e-'));
  chmodSync(stateDir, 0o711);
  const cgroupParent = `brig-test-${process.pid}`;
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    BRIG_STATE_DIR: stateDir,
    BRIG_CGROUP_PARENT: cgroupParent,
    BRIG_UID_BASE: String(uidBase(opts.uids, opts.workers * opts.slotsPerWorker)),
    BRIG_SLOTS: String(opts.slotsPerWorker),
    BRIG_WORKER_METRICS_PORT: '0',
    BRIG_SHUTDOWN_GRACE_MS: '3000',
    BRIG_JOB_LOCK_MS: '4000',
    BRIG_STALLED_CHECK_MS: '1000',
    BRIG_SLOT_SWEEP_MS: '1000',
    LOG_LEVEL: 'warn',
    ...opts.env,
  };
  const serviceConfig = loadServiceConfig({ ...env, PORT: '0', HOST: '127.0.0.1' });
  const api = await startApi({ config: serviceConfig, logger: createLogger({ level: 'warn', name: 'brig-api-test' }) });
  const service: TestService = {
    redis,
    api,
    url: api.url,
    env,
    stateDir,
    cgroupParent,
    workers: [],
    async startWorker() {
      const child = spawn(process.execPath, [BRIG, 'worker'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const worker: WorkerProcess = {
        child,
        exited,
        async stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      };
      service.workers.push(worker);
      return worker;
    },
    async close() {
      await Promise.all(service.workers.map((w) => w.stop()));
      await api.close();
      await redis.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < opts.workers; i++) await service.startWorker();
  await waitForWorkers(service, opts.workers);
  return service;
}

/** Waits until /readyz reports at least `count` live workers (each publishes its languages). */
export async function waitForWorkers(service: TestService, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await countWorkers(service)) >= count) return;
    await sleep(200);
  }
  throw new Error(`fewer than ${count} workers came up within ${timeoutMs} ms`);
}

export async function countWorkers(service: TestService): Promise<number> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(service.redis.url);
  try {
    return (await redis.keys('brig:worker:*')).length;
  } finally {
    redis.disconnect();
  }
}

export async function api(service: TestService, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(service.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}
