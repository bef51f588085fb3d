import type { RunEvent, RunRecord } from '../../shared/contract.ts';
import type { FollowedEvent, RunSignal } from './event-hub.ts';

/**
 * What one follower of a run (an event stream) has been told, so that the
 * state replayed from the record and the live events that raced it never
 * repeat: each step is sent once, a test index once, the end once. When the
 * run starts over (requeued), its steps may be told again.
 */
const UNKNOWN_WORKER = 'unknown';

export class RunFollower {
  private queuedSent = false;
  private startedSent = false;
  private compiledSent = false;
  private readonly testsSent = new Set<number>();
  private ended = false;

  constructor(private readonly id: string) {}

  get finished(): boolean {
    return this.ended;
  }

  /**
   * The events that bring a follower to the record's state: just the end for
   * a final run, else the steps so far, from the running record's progress.
   */
  replay(record: RunRecord): FollowedEvent[] {
    const events: RunEvent[] = [];
    if (record.status === 'done') events.push({ type: 'done', id: this.id, record });
    else if (record.status === 'cancelled') events.push({ type: 'cancelled', id: this.id });
    else {
      events.push({ type: 'queued', id: this.id });
      if (record.status === 'running') {
        const { progress } = record;
        // A record without progress comes from a worker older than the field.
        events.push({ type: 'started', id: this.id, workerId: progress?.workerId ?? UNKNOWN_WORKER });
        if (progress?.compile !== undefined) events.push({ type: 'compiled', id: this.id, compile: progress.compile });
        for (const [index, test] of (progress?.tests ?? []).entries()) events.push({ type: 'test', id: this.id, index, test });
      }
    }
    return events.flatMap((e) => this.accept(e) ?? []);
  }

  /** The event to send for a signal, or null when the follower already knows. */
  accept(signal: RunSignal): FollowedEvent | null {
    if (this.ended) return null;
    switch (signal.type) {
      case 'requeued':
      case 'queued':
        if (this.queuedSent && !this.startedSent) return null;
        this.queuedSent = true;
        this.startedSent = this.compiledSent = false;
        this.testsSent.clear();
        return { type: 'queued', id: this.id };
      case 'started':
        if (this.startedSent) return null;
        this.queuedSent = this.startedSent = true;
        return signal;
      case 'compiled':
        if (this.compiledSent) return null;
        this.compiledSent = true;
        return signal;
      case 'test':
        if (this.testsSent.has(signal.index)) return null;
        this.testsSent.add(signal.index);
        return signal;
      case 'done':
      case 'cancelled':
        this.ended = true;
        return signal;
    }
  }
}
