/**
 * The runs this worker holds right now, each with the AbortController that
 * kills its sandbox. Why a run was aborted decides what becomes of it: a
 * cancel request ends it as cancelled; a shutdown hands it back to the queue
 * untouched, for another worker to run from the start; a lost job lock
 * (BullMQ could not renew it: the run may be another worker's now) drops it
 * without a word more to Redis.
 */
export type AbortKind = 'cancel' | 'shutdown' | 'lock_lost';

/** The reason an AbortSignal carries when this worker aborted the run. */
export class RunAbort {
  constructor(readonly kind: AbortKind) {}
}

/** Why the signal was aborted, or null when it was not (or not by us). */
export function abortKind(signal: AbortSignal): AbortKind | null {
  return signal.aborted && signal.reason instanceof RunAbort ? signal.reason.kind : null;
}

export class ActiveRuns {
  private readonly runs = new Map<string, AbortController>();

  get size(): number {
    return this.runs.size;
  }

  /** Registers a run; its signal goes to every step of the run. */
  start(runId: string): AbortSignal {
    const controller = new AbortController();
    this.runs.set(runId, controller);
    return controller.signal;
  }

  finish(runId: string, signal: AbortSignal): void {
    if (this.runs.get(runId)?.signal === signal) this.runs.delete(runId);
  }

  /** True when this worker holds the run. The first reason given wins. */
  abort(runId: string, kind: AbortKind): boolean {
    const controller = this.runs.get(runId);
    controller?.abort(new RunAbort(kind));
    return controller !== undefined;
  }

  abortAll(kind: AbortKind): number {
    for (const controller of this.runs.values()) controller.abort(new RunAbort(kind));
    return this.runs.size;
  }
}
