import type { Redis } from 'ioredis';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS, type WorkerHeartbeat } from '../shared/contract.ts';
import type { Logger } from '../shared/logger.ts';
import { publishHeartbeat, withdrawHeartbeat } from '../shared/worker-registry.ts';

/**
 * Publishes this worker's heartbeat (worker-registry.ts) every
 * HEARTBEAT_INTERVAL_MS, with a TTL of HEARTBEAT_TTL_MS so that a worker that
 * dies without a word drops out by itself. stop() withdraws it at once.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly workerId: string,
    private readonly snapshot: () => WorkerHeartbeat,
    private readonly logger: Logger,
  ) {}

  /** Publishes once (a failure here fails the start), then keeps publishing. */
  async start(): Promise<void> {
    await this.publish();
    this.timer = setInterval(() => {
      this.inFlight = this.publish().catch((error: Error) => this.logger.warn({ err: error }, 'heartbeat not published'));
    }, HEARTBEAT_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.inFlight;
    await withdrawHeartbeat(this.redis, this.workerId);
  }

  private async publish(): Promise<void> {
    if (this.stopped) return;
    await publishHeartbeat(this.redis, this.snapshot(), HEARTBEAT_TTL_MS);
  }
}
