import type { Queue } from 'bullmq';
import { ServiceError } from '../../shared/errors.ts';

/** Runs that no worker has taken yet: what backpressure is measured on. */
const BACKLOG_STATES = ['waiting', 'delayed', 'prioritized'] as const;
/** A guess at how long a full queue takes to make room; callers back off at least this long. */
export const QUEUE_FULL_RETRY_AFTER_S = 5;

/** Refuses a new run (503 queue_full) when the backlog has reached the capacity. */
export async function checkCapacity(queue: Queue, capacity: number): Promise<void> {
  const counts = await queue.getJobCounts(...BACKLOG_STATES);
  const backlog = BACKLOG_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
  if (backlog >= capacity) {
    throw new ServiceError(
      'queue_full',
      `the run queue is full (${backlog} runs waiting, capacity ${capacity}); retry in ${QUEUE_FULL_RETRY_AFTER_S} s`,
      { retryAfterSeconds: QUEUE_FULL_RETRY_AFTER_S },
    );
  }
}
