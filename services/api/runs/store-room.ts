import { reservedBytes } from '../../shared/admission.ts';
import type { Redis } from '../../shared/redis.ts';

/**
 * How much Redis may still take for new runs, from INFO memory: maxmemory
 * less a headroom, less what it holds now. The headroom is for what no
 * reservation counts (BullMQ's bookkeeping, heartbeats, rate counters,
 * allocator overhead). A Redis without maxmemory has no room to run out
 * of, as far as Brig can tell: null.
 */
const HEADROOM_SHARE = 0.1;
/** INFO is cheap but not free: every submission within this long shares one reading. */
const READING_MAX_AGE_MS = 250;

export interface StoreMemory {
  usedBytes: number;
  /** 0 when Redis has no memory limit. */
  maxBytes: number;
}

/** A refusal for room is what /readyz reports for this long, unless room comes back first. */
const REFUSAL_REMEMBERED_MS = 10_000;

export class StoreRoom {
  private reading: { atMs: number; memory: Promise<StoreMemory> } | null = null;
  private lastRefusal: { atMs: number; bytes: number } | null = null;

  constructor(private readonly redis: Redis) {}

  memory(): Promise<StoreMemory> {
    const now = Date.now();
    if (!this.reading || now - this.reading.atMs > READING_MAX_AGE_MS) {
      const memory = this.redis.info('memory').then(parseMemory);
      this.reading = { atMs: now, memory };
      // A failed reading must not stick: the next caller asks again.
      memory.catch(() => {
        if (this.reading?.memory === memory) this.reading = null;
      });
    }
    return this.reading.memory;
  }

  /** Bytes new runs may reserve; null when Redis has no memory limit. */
  async roomBytes(): Promise<number | null> {
    const { usedBytes, maxBytes } = await this.memory();
    if (maxBytes === 0) return null;
    return maxBytes * (1 - HEADROOM_SHARE) - usedBytes;
  }

  /** A run of this many bytes was refused for want of room. */
  refused(bytes: number): void {
    this.lastRefusal = { atMs: Date.now(), bytes };
  }

  /**
   * For /readyz: null when there is room, else why not. Full is no room at
   * all, or not enough for a run refused in the last few seconds.
   */
  async fullness(): Promise<string | null> {
    const [room, reserved] = await Promise.all([this.roomBytes(), reservedBytes(this.redis)]);
    if (room === null) return null;
    const free = room - reserved;
    const refusal = this.lastRefusal !== null && Date.now() - this.lastRefusal.atMs < REFUSAL_REMEMBERED_MS ? this.lastRefusal : null;
    if (free > 0 && (refusal === null || refusal.bytes <= free)) return null;
    const { usedBytes, maxBytes } = await this.memory();
    return (
      `redis is full: it holds ${usedBytes} bytes and runs not yet finished reserve ${reserved} more, of maxmemory ${maxBytes} less ${HEADROOM_SHARE * 100}% headroom` +
      `${refusal ? `; a run needing ${refusal.bytes} bytes was refused` : ''}; new runs are refused until results expire or running runs end`
    );
  }
}

/** The two fields of INFO memory we need; its lines are `name:value`. */
export function parseMemory(info: string): StoreMemory {
  const field = (name: string): number => {
    const start = info.indexOf(`\n${name}:`);
    if (start < 0) return 0;
    const from = start + name.length + 2;
    const end = info.indexOf('\r', from);
    const value = Number(info.slice(from, end < 0 ? undefined : end));
    return Number.isFinite(value) ? value : 0;
  };
  return { usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
}
