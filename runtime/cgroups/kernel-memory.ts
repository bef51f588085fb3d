/**
 * What a slot's last sandbox left behind in kernel memory, waited out before
 * the next one is prepared.
 *
 * A sandbox's files live in tmpfs mounts that end with its mount namespace.
 * The kernel frees their inodes and dentries after RCU grace periods, in
 * batches, and keeps them charged to the slot's cgroup until then: measured
 * here, a program that filled a 64 MiB limit with empty files left its
 * cgroup charged for 10–25 ms after its launcher was gone, 60–90 ms in all.
 * The next program, started meanwhile, got that much less than its memory
 * limit (43–55 of 64 MiB in 3 probes of 20 on a slow day). So the slot's next
 * sandbox is prepared only once the cgroup's kernel memory is back near where
 * it stood when the last one was prepared.
 *
 * Not exactly there: lookups of the image's files leave dentries in the
 * host's cache, charged to whoever looked first, and a program can make
 * many. Those are not given back by waiting, so the wait has a bound, and
 * the level it ends at is the floor the next wait compares with.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Kernel memory within this much of the floor counts as given back: a sandbox's own teardown leaves ~0.2 MiB for a few ms. */
export const KERNEL_MEMORY_SLACK_BYTES = 1024 * 1024;
/** The longest a slot's next sandbox waits; a leftover that outlasts it is not coming back by waiting. */
export const KERNEL_MEMORY_WAIT_MAX_MS = 200;
const POLL_MS = 2;

export class KernelMemoryFloor {
  private floorBytes: number | null = null;

  /** read: the cgroup's kernel memory in bytes; null where the kernel does not count it apart. */
  constructor(
    private readonly read: () => number | null,
    private readonly waitMaxMs = KERNEL_MEMORY_WAIT_MAX_MS,
  ) {}

  /**
   * Resolves once the cgroup's kernel memory is within the slack of the
   * floor, or the bound has passed; the level it ends at is the next floor.
   * Call with no process in the cgroup, before a sandbox is prepared.
   */
  async settle(): Promise<void> {
    let bytes = this.read();
    const floor = this.floorBytes;
    if (bytes !== null && floor !== null && bytes > floor + KERNEL_MEMORY_SLACK_BYTES) {
      const deadline = performance.now() + this.waitMaxMs;
      while (bytes !== null && bytes > floor + KERNEL_MEMORY_SLACK_BYTES && performance.now() < deadline) {
        await sleep(POLL_MS);
        bytes = this.read();
      }
    }
    this.floorBytes = bytes;
  }
}
