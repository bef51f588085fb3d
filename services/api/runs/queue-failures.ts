import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/logger.ts';
import { closeRedis, createRedisClient, type Redis } from '../../shared/redis.ts';

/**
 * BullMQ's word that it gave up on a job by itself ('failed' in its event
 * stream: a run that stalled more than maxStalledCount times, or one whose
 * worker threw on its last attempt), the one thing the API still reads from
 * that stream: runs announce everything else on RUN_EVENTS_CHANNEL.
 *
 * Nothing waits on these to the millisecond, so the stream is read in
 * batches, at most one XREAD every MIN_READ_INTERVAL_MS while the stream
 * is quiet (at a few hundred runs a second that is a hundredth of a
 * command per run, where reading each event as it comes cost three or
 * four), and at once again while a read comes back full, so that the
 * reader keeps up with a busy stream long before its trimming
 * (EVENTS_MAX_LEN) could drop an entry it had not read.
 */
const MIN_READ_INTERVAL_MS = 250;
/** Entries per XREAD; a read that brings half of it or more is followed by the next at once. */
const READ_BATCH = 500;
/** How long one XREAD waits on a quiet stream. */
const BLOCK_MS = 5_000;
/** After a failed read (Redis away): the connection reconnects by itself, its outage logged once. */
const RETRY_MS = 1_000;

export type FailedJobListener = (jobId: string, reason: string) => void;

export class QueueFailures {
  private readonly redis: Redis;
  private readonly listeners = new Set<FailedJobListener>();
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(
    redisUrl: string,
    private readonly streamKey: string,
    private readonly logger: Logger,
  ) {
    // XREAD BLOCK holds its connection: it gets one of its own.
    this.redis = createRedisClient(redisUrl, { name: 'brig-api-failures', blocking: true, logger });
  }

  onFailed(listener: FailedJobListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts reading from the stream's end as it is now; resolves once that end is known. */
  async start(): Promise<void> {
    if (this.loop) return;
    const [last] = await this.redis.xrevrange(this.streamKey, '+', '-', 'COUNT', 1);
    this.loop = this.read(last?.[0] ?? '0-0');
  }

  /** Stops at once (the blocked read's connection is closed under it). Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await closeRedis(this.redis);
    await this.loop;
  }

  private async read(from: string): Promise<void> {
    let lastId = from;
    while (!this.stop.signal.aborted) {
      const readAt = Date.now();
      let entries: [id: string, fields: string[]][];
      try {
        const reply = await this.redis.xread('COUNT', READ_BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.streamKey, lastId);
        entries = reply?.[0]?.[1] ?? [];
      } catch {
        await this.pause(RETRY_MS);
        continue;
      }
      for (const [id, fields] of entries) {
        lastId = id;
        const entry = fieldsOf(fields);
        if (entry.event === 'failed' && entry.jobId) this.emit(entry.jobId, entry.failedReason ?? '');
      }
      if (entries.length < READ_BATCH / 2) await this.pause(MIN_READ_INTERVAL_MS - (Date.now() - readAt));
    }
  }

  private emit(jobId: string, reason: string): void {
    for (const listener of this.listeners) {
      try {
        listener(jobId, reason);
      } catch (error) {
        this.logger.error({ err: error, runId: jobId }, 'failed-job listener failed');
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    if (ms <= 0 || this.stop.signal.aborted) return;
    await sleep(ms, undefined, { signal: this.stop.signal }).catch(() => {});
  }
}

/** A stream entry's flat [name, value, …] list as an object. */
function fieldsOf(fields: string[]): Record<string, string> {
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!;
  return entry;
}
