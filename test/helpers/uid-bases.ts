/**
 * The host uids each test file's sandboxes run as, handed out from one table.
 *
 * A sandbox in slot i runs as BRIG_UID_BASE + IDS_PER_SLOT × i (its inner
 * root) and the uid after it (its program). Tests find leftover sandboxes,
 * and check what kill(-1) reached, by scanning host processes for those
 * uids, so two files must never share one: not even when two suites run at
 * once. Each file below gets a block of its own, in table order, so no two
 * blocks overlap; a block must hold the slots the file's sandboxes lease at
 * once, and the helpers that start runtimes, workers and services check that
 * they stay inside it.
 */
import { availableParallelism } from 'node:os';
import { IDS_PER_SLOT } from '../../runtime/slots/lease.ts';

/**
 * Where test blocks start: above a real service's default range (600000 and
 * up to BRIG_MAX_SLOTS' default of 1024 slots after it) and below the uids
 * of the load test and the benchmarks (820000 and 850000).
 */
export const FIRST_TEST_UID = 700_000;
/** Host uids per block: room for 500 slots, and bases that read as round numbers in `ps`. */
export const UIDS_PER_BLOCK = 1_000;

/**
 * Test file (its path under test/integration, without `.test.ts`) → the
 * most slots its sandboxes lease at once, counting every runtime, worker or
 * `brig` process it starts on one state dir. Append new files at the end.
 */
const SLOTS_BY_FILE = {
  'runtime/limits': 2,
  'runtime/escapes': 2,
  'runtime/writes-vanish': 2,
  'runtime/parallel': 20,
  'runtime/kernel-counters': 1,
  'runtime/ordinary': 2,
  'runtime/wall-limit-while-frozen': 1,
  'runtime/core-dumps': 1,
  'runtime/launcher-killed-mid-run': 1,
  /** A runtime, and a second one on its state dir that finds it gone. */
  'runtime/clean-stop-sweep': 2,
  /** A runtime, and a second process on its state dir that is killed mid-run. */
  'runtime/crash-sweep': 2,
  'runtime/file-names-are-data': 2,
  'runtime/languages': 2,
  'runtime/image-masks': 1,
  'runtime/directory-image': 1,
  'runtime/seccomp-surface': 2,
  'worker/runs': 2,
  /** Two workers of two slots, one after the other. */
  'worker/shutdown': 4,
  /** A runtime holding slots 0 and 1 while a worker takes 2 and 3, then its rescuer. */
  'worker/crash': 4,
  /** `brig run` and `brig doctor` lease one slot each, one command at a time. */
  'cli/brig': 1,
  /** Two workers of two slots, and the replacement for one killed. */
  'e2e/service': 6,
  'e2e/fair-share': 2,
  'e2e/persistence': 1,
  'e2e/redis-outage': 1,
  /** Two `brig serve` of one slot on one state dir, one after the other. */
  'e2e/serve-signals': 2,
  /** `brig serve` with its default BRIG_SLOTS: one per core. */
  'e2e/local-users': availableParallelism(),
  /** Two simulated machines of two slots each: each host gets its own half of the block (the hosts share one kernel). */
  'e2e/several-hosts': 4,
  /** test/vm (npm run test:vm, inside its VM): named from test/integration, as `../vm/NAME`. */
  '../vm/verdicts': 1,
  '../vm/slot-reuse': 1,
  /** A runtime, and a second process on its state dir that is killed mid-run. */
  '../vm/sweep': 2,
  /** A runtime, and `brig doctor` in cgroups that were not delegated. */
  '../vm/doctor': 2,
  '../vm/doctor-root': 1,
  '../vm/placement': 1,
  '../vm/prepared-sandbox': 1,
  /** One runtime at a time, one slot: its prepared sandbox is the one the tests look at. */
  'runtime/warm-slots': 1,
} as const satisfies Record<string, number>;

export type UidOwner = keyof typeof SLOTS_BY_FILE;

export interface UidRange {
  owner: UidOwner;
  /** BRIG_UID_BASE for this file. */
  base: number;
  /** The most slots the file's sandboxes lease at once. */
  slots: number;
  /** One past the last host uid the file's sandboxes may run as. */
  end: number;
}

export const UID_RANGES: readonly UidRange[] = Object.entries(SLOTS_BY_FILE).map(([owner, slots], index) => {
  const base = FIRST_TEST_UID + index * UIDS_PER_BLOCK;
  if (slots * IDS_PER_SLOT > UIDS_PER_BLOCK) {
    throw new Error(`test/helpers/uid-bases.ts: ${owner} wants ${slots} slots, more than a block of ${UIDS_PER_BLOCK} uids holds`);
  }
  return { owner: owner as UidOwner, base, slots, end: base + slots * IDS_PER_SLOT };
});

/**
 * BRIG_UID_BASE for a test file. Given the slots a runtime, worker or service
 * of the file is about to lease, also checks that they fit the file's range.
 */
export function uidBase(owner: UidOwner, slots?: number): number {
  const range = UID_RANGES.find((r) => r.owner === owner)!;
  if (slots !== undefined && slots > range.slots) {
    throw new Error(`${owner} leases ${slots} slots but test/helpers/uid-bases.ts gives it ${range.slots}: raise its count there`);
  }
  return range.base;
}
