import { type PublishedSignal, RUN_EVENTS_CHANNEL, type RunEvent, type RunRecord } from '../../shared/contract.ts';
import type { RunError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Redis } from '../../shared/redis.ts';
import { doneEventHead, isFinal, type RunStore, storedStatus } from '../../shared/run-store.ts';
import type { QueueFailures } from './queue-failures.ts';

/**
 * What a follower of a run hears: the worker's RunEvents, and 'requeued'
 * when the run went back to the queue (a retry, a stalled worker, a worker
 * that shut down) and will start over.
 */
export type RunSignal = FollowedEvent | { type: 'requeued'; id: string };

/**
 * A 'done' with its record as stored (its JSON's bytes, cut from the signal
 * or read from Redis when too large for it) rather than parsed: a final
 * record holds the outputs, and parsing one and writing it again held the
 * event loop ~100 ms per 15 MiB. Listeners send the bytes on as they are.
 */
export interface StoredDone {
  type: 'done';
  id: string;
  stored: Buffer;
}

/** What a follower of a run is told: a RunEvent, or a 'done' with its record as stored. */
export type FollowedEvent = RunEvent | StoredDone;
export type RunListener = (signal: RunSignal) => void;

/** Where the hub hears of runs. */
export interface RunEventSources {
  /** A connection subscribed to RUN_EVENTS_CHANNEL (the server subscribes it before the app starts). */
  subscriber: Redis;
  /** Jobs BullMQ gave up on by itself. */
  failures: Pick<QueueFailures, 'onFailed'>;
}

const SIGNAL_TYPES: ReadonlySet<string> = new Set(['queued', 'started', 'compiled', 'test', 'done', 'cancelled', 'requeued']);

/**
 * The type and id at the head of a signal as its publishers write it
 * (`{"type":…,"id":…`), read without parsing the rest: most signals are of
 * runs that nobody follows in this process, and a 'done' may carry a
 * record of up to FINAL_EVENT_RECORD_MAX_BYTES.
 */
const SIGNAL_HEAD = /^\{"type":"[a-z]+","id":("(?:[^"\\]|\\.)*")/;
/** Where SIGNAL_HEAD is looked for: far more than a type and a run id take. */
const SIGNAL_HEAD_MAX_BYTES = 256;
const RUN_EVENTS_CHANNEL_BYTES = Buffer.from(RUN_EVENTS_CHANNEL);
const CLOSING_BRACE = 0x7d;

/**
 * A 'done' signal with its record (the worker splices the record's JSON in
 * as stored: see finalSignal) as a StoredDone, its record cut out rather
 * than parsed, so that a wait=true answer or an event stream sends the
 * bytes the worker stored, as GET does. Null for anything else, or for a
 * record whose head storedStatus does not vouch for: that is parsed.
 */
function storedDone(id: string, message: Buffer): StoredDone | null {
  const head = Buffer.from(doneEventHead(id));
  if (message.length <= head.length || !message.subarray(0, head.length).equals(head) || message.at(-1) !== CLOSING_BRACE) return null;
  const stored = message.subarray(head.length, -1);
  return storedStatus(stored) === 'done' ? { type: 'done', id, stored } : null;
}

/** What the caller sees when a job failed without a final record; the reason itself goes to the log. */
const RUN_FAILED: RunError = {
  code: 'run_failed',
  message: "the run failed on Brig's side and was not retried; the request id finds it in the logs",
};

function isSignal(data: unknown): data is PublishedSignal {
  const signal = data as Partial<PublishedSignal> | null;
  return (
    typeof signal === 'object' &&
    signal !== null &&
    typeof signal.type === 'string' &&
    SIGNAL_TYPES.has(signal.type) &&
    typeof signal.id === 'string'
  );
}

/**
 * The one listener of the API process to what runs announce
 * (RUN_EVENTS_CHANNEL), dispatching by run id to whoever follows the run:
 * event streams and wait=true requests. A 'done' without its record (a
 * large one) is completed from the record, the source of truth. A job that
 * BullMQ failed gets a final record here (internal_error) if the worker did
 * not write one; every API process may do it, and only the first write
 * changes anything (and announces it).
 */
export class RunEventHub {
  private readonly listeners = new Map<string, Set<RunListener>>();
  private readonly detach: (() => void)[] = [];

  constructor(
    sources: RunEventSources,
    private readonly store: RunStore,
    private readonly logger: Logger,
  ) {
    // As bytes: a 'done' brings its record, which is passed on as it came,
    // never decoded (ioredis decodes a message only for 'message' listeners).
    const onMessage = (channel: Buffer, message: Buffer) => {
      if (channel.equals(RUN_EVENTS_CHANNEL_BYTES)) this.received(message);
    };
    sources.subscriber.on('messageBuffer', onMessage);
    this.detach.push(() => sources.subscriber.off('messageBuffer', onMessage));
    this.detach.push(sources.failures.onFailed((id, reason) => this.track(id, this.failed(id, reason))));
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

  /** Removes the hub's listeners from its sources (which the caller closes). */
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

  private received(message: Buffer): void {
    const head = SIGNAL_HEAD.exec(message.toString('utf8', 0, SIGNAL_HEAD_MAX_BYTES));
    if (head) {
      const id = JSON.parse(head[1]!) as string;
      if (!this.listeners.has(id)) return;
      const done = storedDone(id, message);
      if (done) {
        this.dispatch(id, done);
        return;
      }
    }
    let signal: unknown;
    try {
      signal = JSON.parse(message.toString('utf8'));
    } catch {
      this.logger.warn({ channel: RUN_EVENTS_CHANNEL }, 'unreadable run signal ignored');
      return;
    }
    if (!isSignal(signal)) return;
    if (signal.type === 'done' && !signal.record) this.track(signal.id, this.dispatchFinal(signal.id));
    else this.dispatch(signal.id, signal as RunSignal);
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

  /** The final event from the record, for the followers of a run in this process; a 'done' carries the record as stored. */
  private async dispatchFinal(id: string): Promise<void> {
    if (!this.listeners.has(id)) return;
    const followed = await this.store.getFollowed(id);
    if (!followed) return;
    if ('done' in followed) return this.dispatch(id, { type: 'done', id, stored: followed.done });
    const event = isFinal(followed.record) ? RunEventHub.finalEvent(followed.record) : null;
    if (event) this.dispatch(id, event);
  }

  private async failed(id: string, reason: string): Promise<void> {
    this.logger.warn({ runId: id, reason }, 'run job failed');
    // Announced on RUN_EVENTS_CHANNEL when this write is the one that ends the run.
    await this.store.failIfUnfinished(id, RUN_FAILED, Date.now());
  }
}
