import { Queue } from 'bullmq';
import { CALLBACK_QUEUE_NAME } from '../../shared/contract.ts';
import type { Logger } from '../../shared/logger.ts';
import { bullmqConnection } from '../../shared/redis.ts';
import { OutageLog, storeFault } from '../../shared/store-errors.ts';

/**
 * A callback job carries where to deliver and whose record, not the record:
 * a record can hold 16 MiB of output (twice that as JSON escapes), already
 * in Redis once under keys.run(id); the delivery reads it when it sends.
 */
export interface CallbackJobData {
  runId: string;
  url: string;
  requestId?: string;
}

export const CALLBACK_JOB_NAME = 'callback';
/** Nobody follows the callback queue's events: a short stream is enough. */
const CALLBACK_EVENTS_MAX_LEN = 100;
/**
 * Retries wait base × 2^n, each shortened by up to this fraction at random,
 * so that the callbacks a dead receiver failed do not all come back at once.
 */
const CALLBACK_BACKOFF_JITTER = 0.2;

export interface CallbackRetrySettings {
  /** Attempts in all, the first included (BRIG_CALLBACK_ATTEMPTS). */
  attempts: number;
  /** The first retry's delay (BRIG_CALLBACK_BACKOFF_MS); it doubles with each retry. */
  backoffMs: number;
}

/** Adds a callback job when a run ends; the callback worker (callback-worker.ts) delivers it. */
export class CallbackQueue {
  private readonly queue: Queue<CallbackJobData>;
  private readonly outage: OutageLog;

  constructor(
    redisUrl: string,
    private readonly retry: CallbackRetrySettings,
    logger: Logger,
  ) {
    this.queue = new Queue<CallbackJobData>(CALLBACK_QUEUE_NAME, {
      // Like the worker's own connection: during a Redis outage an add waits for Redis rather than losing the callback.
      connection: { ...bullmqConnection(redisUrl), maxRetriesPerRequest: null },
      streams: { events: { maxLen: CALLBACK_EVENTS_MAX_LEN } },
    });
    this.outage = new OutageLog(logger, 'brig-callback-queue');
    this.queue.on('error', (error) => {
      if (storeFault(error) === 'unavailable') this.outage.failed(error);
      else logger.error({ err: error }, 'callback queue error');
    });
  }

  /**
   * Queues the delivery of a run's final record, which must already be
   * written. The job id is the run's: a run that ends twice (its worker died
   * between the record and the job's completion, and it ran again) has one
   * delivery pending at a time, and that delivery sends the newest record.
   * A failure here costs the callback, not the run: it is logged.
   */
  async enqueue(data: CallbackJobData, log: Logger): Promise<void> {
    try {
      await this.queue.add(CALLBACK_JOB_NAME, data, {
        jobId: `run-${data.runId}`,
        attempts: this.retry.attempts,
        backoff: { type: 'exponential', delay: this.retry.backoffMs, jitter: CALLBACK_BACKOFF_JITTER },
        removeOnComplete: true,
        removeOnFail: true,
      });
      this.outage.recovered();
    } catch (error) {
      log.error({ err: error }, 'callback not queued: the run is recorded, but its callback will not be sent');
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
