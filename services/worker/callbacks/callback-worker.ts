import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { MS_PER_S } from '../../../runtime/units.ts';
import { callbackSecretKey, type ServiceConfig } from '../../shared/config.ts';
import { CALLBACK_QUEUE_NAME } from '../../shared/contract.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import { bullmqConnection } from '../../shared/redis.ts';
import { OutageLog, storeFault } from '../../shared/store-errors.ts';
import { queueWillRetry } from '../failures.ts';
import { AddressPolicy } from './address-policy.ts';
import { type AttemptDeps, type AttemptResult, attemptCallback } from './attempt.ts';
import type { CallbackJobData } from './queue.ts';

export type CallbackOutcome = 'delivered' | 'retried' | 'dropped';

export interface CallbackWorkerOptions {
  redisUrl: string;
  serviceConfig: ServiceConfig;
  /** Reads a run's final record as stored, its bytes (RunStore.getBytes). */
  readRecord: AttemptDeps['readRecord'];
  metrics: Metrics;
  logger: Logger;
  /** BullMQ's name for this consumer (the worker id). */
  name?: string;
  /** For tests: a resolver of their own (DNS rebinding). */
  resolve?: AttemptDeps['resolve'];
  /** For tests: a CA of their own, for an HTTPS receiver on loopback. */
  tlsCa?: string;
}

/**
 * Delivers the callback queue's jobs, a few at a time
 * (BRIG_CALLBACK_CONCURRENCY). A delivered attempt completes the job; a
 * dropped one fails it at once (UnrecoverableError: BullMQ does not retry
 * it); a failed one throws, and BullMQ tries again after its backoff until
 * BRIG_CALLBACK_ATTEMPTS are spent. Each attempt is counted and logged once.
 */
export function startCallbackWorker(opts: CallbackWorkerOptions): Worker<CallbackJobData, void> {
  const { serviceConfig, metrics, logger } = opts;
  const deps: AttemptDeps = {
    readRecord: opts.readRecord,
    policy: new AddressPolicy(serviceConfig.callbackAllow),
    key: serviceConfig.callbackSecret === undefined ? null : callbackSecretKey(serviceConfig.callbackSecret),
    timeoutMs: serviceConfig.callbackTimeoutMs,
    resolve: opts.resolve,
    tlsCa: opts.tlsCa,
  };
  const worker = new Worker<CallbackJobData, void>(
    CALLBACK_QUEUE_NAME,
    async (job) => {
      const startedAt = performance.now();
      const result = await attemptCallback(job.data, deps);
      const outcome = countedOutcome(result, job);
      metrics.callbacks.inc({ outcome });
      const ms = performance.now() - startedAt;
      metrics.callbackDuration.observe({ outcome }, ms / MS_PER_S);
      logAttempt(logger, job, result, outcome, Math.round(ms));
      if (result.outcome === 'delivered') return;
      if (result.outcome === 'dropped') throw new UnrecoverableError(result.reason);
      throw new Error(result.reason);
    },
    {
      connection: { ...bullmqConnection(opts.redisUrl), maxRetriesPerRequest: null },
      name: opts.name,
      concurrency: serviceConfig.callbackConcurrency,
    },
  );
  const outage = new OutageLog(logger, 'brig-callback-worker');
  worker.on('error', (error) => {
    if (storeFault(error) === 'unavailable') outage.failed(error);
    else logger.error({ err: error }, 'callback worker error');
  });
  worker.on('completed', () => outage.recovered());
  return worker;
}

function countedOutcome(result: AttemptResult, job: Job<CallbackJobData, void>): CallbackOutcome {
  if (result.outcome !== 'failed') return result.outcome;
  return queueWillRetry(job) ? 'retried' : 'dropped';
}

/** The URL's host only: a path or query may carry the receiver's token. */
function logAttempt(logger: Logger, job: Job<CallbackJobData, void>, result: AttemptResult, outcome: CallbackOutcome, ms: number): void {
  const fields = {
    runId: job.data.runId,
    reqId: job.data.requestId,
    attempt: job.attemptsMade + 1,
    host: result.host,
    status: result.status,
    ms,
  };
  if (result.outcome === 'delivered') logger.info(fields, 'callback delivered');
  else if (outcome === 'retried') logger.warn({ ...fields, reason: result.reason }, 'callback attempt failed: it will be tried again');
  else logger.warn({ ...fields, reason: result.reason }, 'callback dropped');
}
