import type { RunRecord } from '../../shared/contract.ts';
import { isFinal, type RunStore } from '../../shared/run-store.ts';
import type { RunEventHub } from './event-hub.ts';

/**
 * The record is read again at this interval while waiting, in case an event
 * was lost (pub/sub keeps nothing for a subscriber that was reconnecting):
 * the record, not the event, is the truth.
 */
export const RECORD_RECHECK_MS = 2_000;

export interface FinalWait {
  /**
   * The final record (as stored, its bytes, when its 'done' brought it or
   * said where: see StoredDone), or null when the time ran out or the wait
   * was aborted.
   */
  readonly result: Promise<RunRecord | Buffer | null>;
  stop(): void;
}

/**
 * Waits for a run to be final. It follows the run from the moment it is
 * called, so call it before the job is queued to miss nothing.
 */
export function waitForFinal(opts: { hub: RunEventHub; store: RunStore; id: string; timeoutMs: number; signal?: AbortSignal }): FinalWait {
  const { hub, store, id } = opts;
  let settle!: (record: RunRecord | Buffer | null) => void;
  const result = new Promise<RunRecord | Buffer | null>((resolve) => {
    settle = resolve;
  });
  let done = false;
  const check = async (announced?: RunRecord) => {
    // A final record that came with the event is what the worker stored: no need to read it back.
    const record = announced && isFinal(announced) ? announced : await store.get(id);
    if (record && isFinal(record)) finish(record);
  };
  const onError = () => {}; // a failed recheck waits for the next one, or for the timeout
  const unsubscribe = hub.subscribe(id, (signal) => {
    if (signal.type === 'done') {
      if ('stored' in signal) finish(signal.stored);
      else void check(signal.record).catch(onError);
    } else if (signal.type === 'cancelled') void check().catch(onError);
  });
  const recheck = setInterval(() => void check().catch(onError), RECORD_RECHECK_MS);
  const timeout = setTimeout(() => finish(null), opts.timeoutMs);
  const onAbort = () => finish(null);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();

  function finish(record: RunRecord | Buffer | null): void {
    if (done) return;
    done = true;
    unsubscribe();
    clearInterval(recheck);
    clearTimeout(timeout);
    opts.signal?.removeEventListener('abort', onAbort);
    settle(record);
  }
  return { result, stop: () => finish(null) };
}
