import type { JobsOptions } from 'bullmq';
import { RUN_JOB_ATTEMPTS } from '../../shared/contract.ts';

/**
 * How a run's job is queued. A failure on Brig's side (a sandbox that could
 * not be built) is retried: the worker reads the attempts from the job's
 * options, and writes internal_error only on the last one.
 */
const RETRY_BACKOFF_MS = 1_000;

export function runJobOptions(id: string, resultTtlSeconds: number, priority: number): JobsOptions {
  return {
    jobId: id,
    // Every run has a priority (see admit.ts), so all of them wait in one ordered set.
    priority,
    attempts: RUN_JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: RETRY_BACKOFF_MS },
    // The record is the result; the job is only the means. A failed job is
    // kept as long as a result would be, for whoever looks into it.
    removeOnComplete: true,
    removeOnFail: { age: resultTtlSeconds },
  };
}
