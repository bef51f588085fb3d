import type { Queue } from 'bullmq';
import type { RunJobData, RunOutcome, RunRecord } from '../../shared/contract.ts';
import type { Logger } from '../../shared/logger.ts';
import { isFinal, type RunStore } from '../../shared/run-store.ts';

export type CancelOutcome =
  | { kind: 'not_found' }
  /** It was over before the request: it stays as it was. */
  | { kind: 'final'; record: RunRecord }
  /** Cancelled (it was still queued), or asked of the worker that runs it. */
  | { kind: 'requested'; record: RunRecord };

/**
 * Cancels a run as the contract says: the cancel key and the message on
 * CANCEL_CHANNEL first (so that a worker taking the job right now sees it),
 * then a still-queued record becomes cancelled and its job is removed. A job
 * a worker already holds cannot be removed; that worker aborts it and
 * writes the cancelled record itself.
 */
export async function cancelRun(store: RunStore, queue: Queue<RunJobData, RunOutcome>, id: string, log: Logger): Promise<CancelOutcome> {
  const record = await store.get(id);
  if (!record) return { kind: 'not_found' };
  if (isFinal(record)) return { kind: 'final', record };
  await store.requestCancel(id);
  const after = (await store.cancelIfQueued(id, Date.now())) ?? record;
  if (after.status === 'cancelled') {
    try {
      await queue.remove(id);
    } catch (error) {
      // Taken by a worker between our read and the removal: it has the cancel key and the message.
      log.debug({ err: error, runId: id }, 'job not removed: a worker holds it');
    }
  }
  return { kind: 'requested', record: after };
}
