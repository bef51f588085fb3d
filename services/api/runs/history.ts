import type { RunEvent } from '../../shared/contract.ts';
import type { Redis } from '../../shared/redis.ts';
import type { RunSignal } from './event-hub.ts';

/**
 * A running run's progress so far, read back from BullMQ's event stream (the
 * stream QueueEvents follows), for a follower that joins after the run
 * started: the record says only 'running' until the worker finishes, while
 * the stream still holds the 'compiled' and 'test' events the follower
 * missed. The scan starts at the current attempt's start (job.processedOn)
 * and is bounded; past the bound the follower simply gets less history.
 */
const PAGE_ENTRIES = 500;
const MAX_SCANNED_ENTRIES = 10_000;
/** processedOn is the worker's clock, stream ids are Redis's: start a little early. */
const CLOCK_SLACK_MS = 1_000;

function fieldsOf(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

export async function progressSince(redis: Redis, eventsKey: string, jobId: string, sinceMs: number): Promise<RunSignal[]> {
  const signals: RunSignal[] = [];
  let start = String(Math.max(0, sinceMs - CLOCK_SLACK_MS));
  for (let scanned = 0; scanned < MAX_SCANNED_ENTRIES;) {
    const entries = await redis.xrange(eventsKey, start, '+', 'COUNT', PAGE_ENTRIES);
    for (const [, flat] of entries) {
      const fields = fieldsOf(flat);
      if (fields.jobId !== jobId) continue;
      if (fields.event === 'progress' && fields.data) {
        const event = JSON.parse(fields.data) as RunEvent;
        if (event && typeof event === 'object' && event.id === jobId) signals.push(event);
      } else if ((fields.event === 'waiting' && fields.prev === 'active') || fields.event === 'delayed') {
        signals.push({ type: 'requeued', id: jobId });
      }
    }
    if (entries.length < PAGE_ENTRIES) break;
    scanned += entries.length;
    start = `(${entries.at(-1)![0]}`;
  }
  return signals;
}
