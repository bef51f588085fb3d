import type { Queue } from 'bullmq';
import type { Backlog } from '../../shared/admission.ts';
import { ServiceError } from '../../shared/errors.ts';

/** A guess at how long a full queue takes to make room; callers back off at least this long. */
export const QUEUE_FULL_RETRY_AFTER_S = 5;

/**
 * The runs no worker has taken yet, what backpressure is measured on, as
 * BullMQ keeps them: waiting (a list), prioritized and delayed (sorted
 * sets); what its getJobCounts('waiting', 'prioritized', 'delayed') adds
 * up. Counted inside the admission script, with no command of its own.
 */
export function queueBacklog(queue: Pick<Queue, 'keys'>, capacity: number): Backlog {
  return { lists: [queue.keys.wait!], sortedSets: [queue.keys.prioritized!, queue.keys.delayed!], capacity };
}

/** 503 queue_full: the backlog has reached the capacity. */
export function queueFull(backlog: number, capacity: number): ServiceError {
  return new ServiceError(
    'queue_full',
    `the run queue is full (${backlog} runs waiting, capacity ${capacity}); retry in ${QUEUE_FULL_RETRY_AFTER_S} s`,
    { retryAfterSeconds: QUEUE_FULL_RETRY_AFTER_S },
  );
}
