import type { Logger } from '../shared/logger.ts';
import type { RunRecord } from '../shared/contract.ts';

/** A callback is a courtesy: a slow or dead receiver must not hold the worker. */
export const CALLBACK_TIMEOUT_MS = 5_000;

/**
 * POSTs final run records to the callbackUrl a run asked for, best effort:
 * the run is already recorded, so a failed delivery is logged and dropped.
 * Deliveries run beside the queue; close() waits for those in flight.
 */
export class CallbackSender {
  private readonly pending = new Set<Promise<void>>();

  send(url: string, record: RunRecord, logger: Logger): void {
    const delivery = deliver(url, record, logger).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  async drain(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}

async function deliver(url: string, record: RunRecord, logger: Logger): Promise<void> {
  const startedAt = performance.now();
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(record),
      signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
      redirect: 'manual',
    });
    await response.body?.cancel();
    const ms = Math.round(performance.now() - startedAt);
    if (response.ok) logger.info({ callbackStatus: response.status, ms }, 'callback delivered');
    else logger.warn({ callbackStatus: response.status, ms }, 'callback refused by the receiver');
  } catch (error) {
    logger.warn({ err: error, ms: Math.round(performance.now() - startedAt) }, 'callback not delivered');
  }
}
