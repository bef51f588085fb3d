import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from '../errors.ts';
import { tryLockExclusive } from '../system/libc.ts';

/**
 * A sandbox slot: the unit of concurrency. Each slot owns two host uids that
 * no other slot uses (one for the sandbox's inner root, one for the program),
 * a cgroup of its own, and a folder for its jobs' workspaces.
 *
 * Several worker processes on one machine share the same state dir, so a
 * slot is leased with flock(2) on a lock file: the kernel releases the lease
 * when the holder dies, however it dies, and the next holder can then sweep
 * whatever the dead one left behind.
 */
export interface SlotIdentity {
  index: number;
  name: string;
  /** Host uid/gid of the sandbox's inner root (setup, init). */
  rootHostId: number;
  /** Host uid/gid of the program (inner uid 1000). */
  userHostId: number;
}

export interface SlotLease extends SlotIdentity {
  release(): void;
}

/** Host ids per slot: inner root and inner user. */
export const IDS_PER_SLOT = 2;

export function slotIdentity(index: number, uidBase: number): SlotIdentity {
  return {
    index,
    name: `slot-${index}`,
    rootHostId: uidBase + index * IDS_PER_SLOT,
    userHostId: uidBase + index * IDS_PER_SLOT + 1,
  };
}

/** Leases `count` free slots out of `maxSlots`, lowest index first. */
export function leaseSlots(opts: { locksDir: string; count: number; maxSlots: number; uidBase: number }): SlotLease[] {
  mkdirSync(opts.locksDir, { recursive: true, mode: 0o700 });
  const leases: SlotLease[] = [];
  for (let index = 0; index < opts.maxSlots && leases.length < opts.count; index++) {
    const lease = tryLease(opts.locksDir, slotIdentity(index, opts.uidBase));
    if (lease) leases.push(lease);
  }
  if (leases.length < opts.count) {
    for (const lease of leases) lease.release();
    throw new HostError(
      'slots_exhausted',
      `only ${leases.length} of ${opts.count} sandbox slots are free (at most ${opts.maxSlots} per machine): lower BRIG_SLOTS or raise BRIG_MAX_SLOTS`,
    );
  }
  return leases;
}

/** Leases one given slot, or null when a live process holds it. */
export function tryLeaseSlot(locksDir: string, index: number, uidBase: number): SlotLease | null {
  return tryLease(locksDir, slotIdentity(index, uidBase));
}

function tryLease(locksDir: string, identity: SlotIdentity): SlotLease | null {
  const path = join(locksDir, `${identity.name}.lock`);
  const fd = openSync(path, 'a', 0o600);
  if (!tryLockExclusive(fd, path)) {
    closeSync(fd);
    return null;
  }
  let released = false;
  return {
    ...identity,
    release() {
      if (released) return;
      released = true;
      closeSync(fd); // closing the only fd drops the flock
    },
  };
}
