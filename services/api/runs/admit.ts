import type { Queue } from 'bullmq';
import { MS_PER_S } from '../../../runtime/units.ts';
import { admitRun } from '../../shared/admission.ts';
import type { RunRecord } from '../../shared/contract.ts';
import { ServiceError } from '../../shared/errors.ts';
import type { Redis } from '../../shared/redis.ts';
import { queueBacklog, queueFull } from './capacity.ts';
import type { StoreRoom } from './store-room.ts';

/** A client at its cap waits for one of its runs to end: a short run's time. */
export const CLIENT_BUSY_RETRY_AFTER_S = 5;
/** Room comes back as results expire, or runs end and give their reservation back. */
export const STORE_FULL_RETRY_AFTER_S = 30;
/** BullMQ's largest priority (2^21); a client's position among its runs is capped there. */
const MAX_BULLMQ_PRIORITY = 2 ** 21;

export interface AdmitOptions {
  /** The run's queued record, written in the same step as its admission. */
  record: RunRecord;
  client: string;
  /** Worst-case Redis bytes of the run. */
  storeBytes: number;
  createdAt: number;
  queueCapacity: number;
  clientMaxActiveRuns: number;
  resultTtlSeconds: number;
}

/**
 * Lets a run in, and writes its queued record, or says why not: the
 * queue's backlog (503 queue_full), the client's runs queued or running
 * (429 too_many_active_runs), and the room Redis has for the run's worst
 * case (503 store_full). One script, one command. Returns the job's
 * BullMQ priority: the run's position among its client's active runs, so
 * that the first run of a client jumps ahead of another client's backlog
 * (1 is served first; equal priorities go in order of arrival).
 */
export async function admit(deps: { redis: Redis; queue: Queue; room: StoreRoom }, opts: AdmitOptions): Promise<number> {
  const admission = await admitRun(deps.redis, {
    record: opts.record,
    ttlSeconds: opts.resultTtlSeconds,
    backlog: queueBacklog(deps.queue, opts.queueCapacity),
    client: opts.client,
    bytes: opts.storeBytes,
    clientCap: opts.clientMaxActiveRuns,
    roomBytes: await deps.room.roomBytes(),
    now: Date.now(),
    staleAt: opts.createdAt + opts.resultTtlSeconds * MS_PER_S,
  });
  if (admission.admitted) return Math.min(admission.position, MAX_BULLMQ_PRIORITY);
  if (admission.reason === 'queue_full') throw queueFull(admission.backlog, opts.queueCapacity);
  if (admission.reason === 'id_taken') throw new Error(`run id ${opts.record.id} is already taken`);
  if (admission.reason === 'client_busy') {
    throw new ServiceError(
      'too_many_active_runs',
      `this key (or address) has ${admission.activeRuns} runs queued or running, the most the server allows at once; retry when one has ended`,
      { retryAfterSeconds: CLIENT_BUSY_RETRY_AFTER_S },
    );
  }
  deps.room.refused(opts.storeBytes);
  throw new ServiceError(
    'store_full',
    `the result store has no room for this run's worst case (${opts.storeBytes} bytes) until results expire or running runs end; retry later or ask for less output`,
    { retryAfterSeconds: STORE_FULL_RETRY_AFTER_S },
  );
}
