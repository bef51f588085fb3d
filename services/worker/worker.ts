import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { WaitingError, Worker } from 'bullmq';
import type { RuntimeConfig } from '../../runtime/config.ts';
import { Runtime } from '../../runtime/runtime.ts';
import type { ServiceConfig } from '../shared/config.ts';
import { CANCEL_CHANNEL, QUEUE_NAME, type RunJobData, type RunOutcome, type WorkerHeartbeat } from '../shared/contract.ts';
import type { Logger } from '../shared/logger.ts';
import { createMetrics, type Metrics } from '../shared/metrics.ts';
import { bullmqConnection, closeRedis, createRedisClient } from '../shared/redis.ts';
import { RunStore } from '../shared/run-store.ts';
import { OutageLog, storeFault } from '../shared/store-errors.ts';
import { ActiveRuns } from './active-runs.ts';
import { startCallbackWorker } from './callbacks/callback-worker.ts';
import { CallbackQueue } from './callbacks/queue.ts';
import { Heartbeat } from './heartbeat.ts';
import { JobLockLost, jobLock } from './job-lock.ts';
import { probeLanguages } from './languages.ts';
import { serveMetrics } from './metrics-server.ts';
import { type ProcessorContext, processRun, type RunQueueJob, RunRequeued } from './processor.ts';
import { SlotSweeper } from './slot-sweeper.ts';

/**
 * How quickly a dead worker's runs go to another worker. A live worker
 * renews its locks every lockDurationMs/2 (BullMQ's default), so a busy
 * event loop is never mistaken for a dead worker; one killed with SIGKILL
 * stops renewing, its locks expire after lockDurationMs, and the stalled
 * check of any worker (every stalledIntervalMs) puts the job back in wait.
 * A run can stall maxStalledCount times before BullMQ fails it.
 */
export interface WorkerTiming {
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  /** How often slots left by dead workers on this machine are swept. */
  slotSweepIntervalMs: number;
}

/** Timing from the service config (BRIG_JOB_LOCK_MS, BRIG_STALLED_CHECK_MS, BRIG_SLOT_SWEEP_MS). */
function timingFrom(config: ServiceConfig): WorkerTiming {
  return {
    lockDurationMs: config.jobLockMs,
    stalledIntervalMs: config.stalledCheckMs,
    maxStalledCount: MAX_STALLED_COUNT,
    slotSweepIntervalMs: config.slotSweepMs,
  };
}

/** A run may stall (its worker die) this many times before BullMQ fails it as worker_lost. */
const MAX_STALLED_COUNT = 2;

export interface WorkerOptions {
  runtimeConfig: RuntimeConfig;
  serviceConfig: ServiceConfig;
  redisUrl: string;
  logger: Logger;
  /** Shared with the API when both run in one process; else the worker makes its own. */
  metrics?: Metrics;
  workerId?: string;
  /** For tests that cannot wait 30 s for a lock to expire. */
  timing?: Partial<WorkerTiming>;
}

export interface BrigWorker {
  workerId: string;
  /** Where this worker's Prometheus metrics are served. */
  metricsUrl: string;
  /**
   * Graceful and idempotent: stops taking jobs, lets the active runs finish
   * within serviceConfig.shutdownGraceMs, hands the rest back to the queue,
   * then releases everything the worker holds.
   */
  close(): Promise<void>;
}

/**
 * A worker: one Runtime (its sandbox slots), a BullMQ Worker taking as many
 * runs at once as there are slots, a heartbeat, a cancel listener, and a
 * /metrics endpoint.
 */
export async function startWorker(opts: WorkerOptions): Promise<BrigWorker> {
  const { runtimeConfig, serviceConfig, redisUrl } = opts;
  const timing = { ...timingFrom(serviceConfig), ...opts.timing };
  const workerId = opts.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const logger = opts.logger.child({ workerId });
  const metrics = opts.metrics ?? createMetrics();
  const startedAt = Date.now();
  // Undone in reverse if the start fails half-way.
  const undo: (() => Promise<unknown>)[] = [];
  try {
    const runtime = await Runtime.create(runtimeConfig);
    undo.push(() => runtime.close());
    runtime.onBackgroundFailure = (error) => logger.error({ err: error }, 'a workspace could not be released; the next start sweeps it');
    const sweeper = new SlotSweeper(runtime, logger);
    await sweeper.sweep();
    const languages = await probeLanguages(runtime, logger);

    // A worker waits for Redis rather than failing its runs: its commands
    // retry until Redis is back (BullMQ then puts stalled runs back anyway).
    const redis = createRedisClient(redisUrl, { name: 'brig-worker', blocking: true, logger });
    undo.push(() => closeRedis(redis));
    const activeRuns = new ActiveRuns();
    const subscriber = createRedisClient(redisUrl, { name: 'brig-worker-cancel', blocking: true, logger });
    undo.push(() => closeRedis(subscriber));
    subscriber.on('message', (_channel: string, runId: string) => {
      if (activeRuns.abort(runId, 'cancel')) logger.info({ runId }, 'cancel request: aborting the run');
    });
    await subscriber.subscribe(CANCEL_CHANNEL);

    const metricsServer = await serveMetrics(metrics.registry, { host: serviceConfig.host, port: serviceConfig.workerMetricsPort });
    undo.push(() => metricsServer.close());

    const heartbeat = new Heartbeat(
      redis,
      workerId,
      (): WorkerHeartbeat => ({
        workerId,
        hostname: hostname(),
        pid: process.pid,
        slots: runtimeConfig.slots,
        activeRuns: activeRuns.size,
        languages,
        startedAt,
        at: Date.now(),
      }),
      logger,
    );
    await heartbeat.start();
    undo.push(() => heartbeat.stop());

    const store = new RunStore(redis, serviceConfig.resultTtlSeconds);
    if (serviceConfig.callbackSecret === undefined)
      logger.warn('BRIG_CALLBACK_SECRET is unset: callbacks are sent unsigned, and their receivers cannot tell them from forgeries');
    // Callbacks go through a queue of their own, delivered (and retried) by a few consumers in each worker.
    const callbacks = new CallbackQueue(
      redisUrl,
      { attempts: serviceConfig.callbackAttempts, backoffMs: serviceConfig.callbackBackoffMs },
      logger,
    );
    undo.push(() => callbacks.close());
    const callbackWorker = startCallbackWorker({
      redisUrl,
      serviceConfig,
      readRecord: (id) => store.getBytes(id),
      metrics,
      logger,
      name: workerId,
    });
    undo.push(() => callbackWorker.close(true));
    await callbackWorker.waitUntilReady();
    const ctx: ProcessorContext = { runtime, store, callbacks, serviceConfig, metrics, logger, workerId };
    const worker = new Worker<RunJobData, RunOutcome>(
      QUEUE_NAME,
      async (job: RunQueueJob, token?: string) => {
        const signal = activeRuns.start(job.data.id);
        try {
          const lockToken = token ?? job.token;
          if (lockToken === undefined) throw new Error(`BullMQ gave no lock token with job ${job.id}`);
          return await processRun(job, jobLock(job, lockToken), signal, ctx);
        } catch (error) {
          if (error instanceof JobLockLost) {
            // Not an error of ours: the run went on elsewhere. WaitingError keeps BullMQ
            // from finishing a job it no longer holds (its own scripts would refuse).
            logger.warn({ runId: error.runId, at: error.at }, 'job lock lost: the run belongs to another worker now, this one drops it');
            throw new WaitingError();
          }
          if (!(error instanceof RunRequeued)) throw error;
          // Back to the head of the wait list, lock released, no attempt spent;
          // WaitingError tells BullMQ the job has already been moved.
          await job.moveToWait(token);
          throw new WaitingError();
        } finally {
          activeRuns.finish(job.data.id, signal);
        }
      },
      {
        connection: { ...bullmqConnection(redisUrl), maxRetriesPerRequest: null },
        name: workerId,
        // One job per slot, no prefetch: a job held behind a busy slot here
        // would wait while another worker's slot stands idle.
        concurrency: runtimeConfig.slots,
        lockDuration: timing.lockDurationMs,
        stalledInterval: timing.stalledIntervalMs,
        maxStalledCount: timing.maxStalledCount,
      },
    );
    // BullMQ reports each failed reconnect of its own connections here: one line per outage.
    const queueOutage = new OutageLog(logger, 'brig-worker-queue');
    worker.on('error', (error) => {
      if (storeFault(error) === 'unavailable') queueOutage.failed(error);
      // Its run is aborted below and logged once, as a lost lock.
      else if (error.message.startsWith(LOCK_RENEWAL_FAILED)) logger.debug({ err: error }, 'job lock not renewed');
      else logger.error({ err: error }, 'queue worker error');
    });
    // The lock is another worker's, or gone: the run is not ours to finish.
    worker.on('lockRenewalFailed', (jobIds: string[]) => {
      for (const runId of jobIds) activeRuns.abort(runId, 'lock_lost');
    });
    redis.on('ready', () => queueOutage.recovered());
    worker.on('stalled', (jobId) => logger.warn({ runId: jobId }, 'a stalled run was put back in the queue'));
    undo.push(() => worker.close(true));
    await worker.waitUntilReady();
    sweeper.every(timing.slotSweepIntervalMs);
    logger.info({ slots: runtimeConfig.slots, metricsUrl: metricsServer.url }, 'worker started');

    let closing: Promise<void> | null = null;
    const close = async () => {
      logger.info({ activeRuns: activeRuns.size }, 'worker closing');
      await sweeper.stop();
      // worker.close() stops fetching and waits for the active runs; past the
      // grace period they are aborted and handed back to the queue.
      const grace = setTimeout(() => {
        const aborted = activeRuns.abortAll('shutdown');
        if (aborted)
          logger.warn(
            { aborted, graceMs: serviceConfig.shutdownGraceMs },
            'grace period over: handing the remaining runs back to the queue',
          );
      }, serviceConfig.shutdownGraceMs);
      try {
        await closeQueueWorker(worker, 'runs', serviceConfig.shutdownGraceMs + QUEUE_CLOSE_SLACK_MS, logger);
      } finally {
        clearTimeout(grace);
      }
      // Every step runs even if one before it failed: the runtime must give
      // back its cgroups and slots whatever became of Redis.
      await runAll(logger, [
        // No run queues a callback any more; the deliveries under way get their timeout to end.
        [
          'callback worker',
          () => closeQueueWorker(callbackWorker, 'callbacks', serviceConfig.callbackTimeoutMs + QUEUE_CLOSE_SLACK_MS, logger),
        ],
        ['callback queue', () => callbacks.close()],
        ['heartbeat', () => heartbeat.stop()],
        ['cancel listener', () => closeRedis(subscriber)],
        ['metrics server', () => metricsServer.close()],
        ['runtime', () => runtime.close()],
        ['redis', () => closeRedis(redis)],
      ]);
      logger.info('worker closed');
    };
    return {
      workerId,
      metricsUrl: metricsServer.url,
      close: () => (closing ??= close()),
    };
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => {});
    throw error;
  }
}

/** How BullMQ's lock manager words a lock it could not renew (it also emits lockRenewalFailed). */
const LOCK_RENEWAL_FAILED = 'could not renew lock for job';

/**
 * How long BullMQ's close may take beyond the grace period (runs aborted at
 * the end of it stop within a second or two).
 */
const QUEUE_CLOSE_SLACK_MS = 5_000;

/**
 * BullMQ's Worker.close() can wait forever for a connection that was
 * reconnecting when it was called (taskforcesh/bullmq#4656: a Redis restart
 * just before a shutdown does it). The runs are over by then, so the rest of
 * the shutdown goes on without it: slots and cgroups must be given back
 * whatever became of BullMQ. Its sockets may then keep the process alive;
 * the CLI exits regardless once the shutdown is done.
 */
async function closeQueueWorker(worker: Pick<Worker, 'close'>, queue: string, timeoutMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    if ((await Promise.race([worker.close().then(() => 'closed' as const), timedOut])) === 'timeout') {
      logger.warn(
        { queue, timeoutMs },
        'the queue worker did not close in time (a Redis reconnect under way; bullmq#4656): going on without it',
      );
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Runs each step in order, logs the ones that fail, and throws the first failure once all have run. */
async function runAll(logger: Logger, steps: [name: string, step: () => Promise<unknown>][]): Promise<void> {
  const failures: unknown[] = [];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (error) {
      logger.error({ err: error, step: name }, 'worker close step failed');
      failures.push(error);
    }
  }
  if (failures.length) throw failures[0];
}
