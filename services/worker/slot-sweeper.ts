import type { Runtime } from '../../runtime/runtime.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * Slots of workers on this machine that died without cleaning up (SIGKILL,
 * OOM kill) keep their cgroups and workspace mounts until someone leases
 * them again; this sweeps them at start and then periodically. The runtime
 * names only slots that really held leftovers, so the warning below means a
 * crash, not another worker's clean stop.
 */
export class SlotSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly logger: Logger,
  ) {}

  sweep(): Promise<void> {
    this.running ??= this.runtime
      .sweepFreeSlots()
      .then(
        (swept) => {
          if (swept.length) this.logger.warn({ swept }, 'swept slots left behind by a dead worker');
        },
        (error: Error) => this.logger.error({ err: error }, 'slot sweep failed'),
      )
      .finally(() => (this.running = null));
    return this.running;
  }

  every(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
