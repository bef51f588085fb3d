import type { QueueEvents } from 'bullmq';
import type { RunEvent, RunRecord } from '../../shared/contract.ts';
import type { RunError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { isFinal, type RunStore } from '../../shared/run-store.ts';

/**
 * What a follower of a run hears: the worker's RunEvents, and 'requeued'
 * when the run went back to the queue (a retry, a stalled worker, a worker
 * that shut down) and will start over.
 */
export type RunSignal = RunEvent | { type: 'requeued'; id: string };
export type RunListener = (signal: RunSignal) => void;

const RUN_EVENT_TYPES: ReadonlySet<string> = new Set(['queued', 'started', 'compiled', 'test', 'done', 'cancelled']);

/** What the caller sees when a job failed without a final record; the reason itself goes to the log. */
const RUN_FAILED: RunError = {
  code: 'run_failed',
  message: "the run failed on Brig's side and was not retried; the request id finds it in the logs",
};

function isRunEvent(data: unknown, jobId: string): data is RunEvent {
  const event = data as Partial<RunEvent> | null;
  return (
    typeof event === 'object' && event !== null && typeof event.type === 'string' && RUN_EVENT_TYPES.has(event.type) && event.id === jobId
  );
}

/**
 * The one QueueEvents listener of the API process, dispatching by job id
 * (= run id) to whoever follows the run: event streams and wait=true
 * requests. Final states are read back from the record, the source of
 * truth. A job that failed gets a final record here (internal_error) if the
 * worker did not write one; every API process may do it, and only the first
 * write changes anything.
 */
export class RunEventHub {
  private readonly listeners = new Map<string, Set<RunListener>>();
  private readonly detach: (() => void)[] = [];

  constructor(
    private readonly queueEvents: QueueEvents,
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {
    this.listen('progress', ({ jobId, data }: { jobId: string; data: unknown }) => {
      if (isRunEvent(data, jobId)) this.dispatch(jobId, data);
    });
    this.listen('completed', ({ jobId }: { jobId: string }) => this.track(jobId, this.completed(jobId)));
    this.listen('failed', ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
      this.track(jobId, this.failed(jobId, failedReason)),
    );
    this.listen('removed', ({ jobId }: { jobId: string }) => this.track(jobId, this.removed(jobId)));
    // Back in the queue after it was taken: a retry (waiting or delayed with a backoff), a stalled or stopped worker.
    this.listen('waiting', ({ jobId, prev }: { jobId: string; prev?: string }) => {
      if (prev === 'active') this.dispatch(jobId, { type: 'requeued', id: jobId });
    });
    this.listen('delayed', ({ jobId }: { jobId: string }) => this.dispatch(jobId, { type: 'requeued', id: jobId }));
  }

  /** Starts delivering the run's signals to listener; returns the unsubscribe. */
  subscribe(id: string, listener: RunListener): () => void {
    let set = this.listeners.get(id);
    if (!set) {
      set = new Set();
      this.listeners.set(id, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  get followedRuns(): number {
    return this.listeners.size;
  }

  /** Removes the hub's listeners from the QueueEvents (which the caller closes). */
  close(): void {
    for (const off of this.detach.splice(0)) off();
    this.listeners.clear();
  }

  /** The final event a record stands for, or null when it is not final. */
  static finalEvent(record: RunRecord): RunEvent | null {
    if (record.status === 'cancelled') return { type: 'cancelled', id: record.id };
    if (record.status === 'done') return { type: 'done', id: record.id, record };
    return null;
  }

  private listen(event: string, handler: (args: never) => void): void {
    const on = this.queueEvents.on.bind(this.queueEvents) as (e: string, h: (args: never) => void) => void;
    const off = this.queueEvents.off.bind(this.queueEvents) as (e: string, h: (args: never) => void) => void;
    on(event, handler);
    this.detach.push(() => off(event, handler));
  }

  private dispatch(id: string, signal: RunSignal): void {
    const set = this.listeners.get(id);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(signal);
      } catch (error) {
        this.logger.error({ err: error, runId: id }, 'run listener failed');
      }
    }
  }

  private track(id: string, work: Promise<void>): void {
    work.catch((error: unknown) => this.logger.error({ err: error, runId: id }, 'run event not handled'));
  }

  /**
   * The worker writes its final record before it completes the job; the
   * job's return value is only the outcome, so the record is read here, once
   * per completed run that somebody follows in this process.
   */
  private async dispatchFinal(id: string): Promise<void> {
    const record = await this.store.get(id);
    const event = record && isFinal(record) ? RunEventHub.finalEvent(record) : null;
    if (event) this.dispatch(id, event);
  }

  private async completed(id: string): Promise<void> {
    if (this.listeners.has(id)) await this.dispatchFinal(id);
  }

  private async failed(id: string, reason: string): Promise<void> {
    this.logger.warn({ runId: id, reason }, 'run job failed');
    await this.store.failIfUnfinished(id, RUN_FAILED, Date.now());
    if (this.listeners.has(id)) await this.dispatchFinal(id);
  }

  private async removed(id: string): Promise<void> {
    if (this.listeners.has(id)) await this.dispatchFinal(id);
  }
}
