/**
 * Killing, waiting for and removing cgroups: shared by v1 and v2 and by
 * sweep(), so teardown behaves the same however a cgroup is reached.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BrigError, HostError, SandboxError } from '../errors.ts';
import {
  type CgroupDirOps,
  isCreatedByBrig,
  listChildCgroups,
  makeCgroupDir,
  markCreatedByBrig,
  pathExists,
  readTextIfExists,
  removeCgroupDir,
} from './files.ts';
import { parsePids } from './parse.ts';

export const POLL_INTERVAL_MS = 5;
export const DESTROY_TIMEOUT_MS = 5000;
/** Each round re-reads cgroup.procs to catch children forked while we were killing their parents. */
const MAX_KILL_ROUNDS = 20;
/** Pids shown as 0 live outside our pid namespace; pid 1 and ourselves are never a sandbox's processes. */
const NEVER_KILLED_PIDS = new Set([0, 1, process.pid]);
/** One path component of letters, digits, '.', '_' or '-', not starting with '.': cannot escape the parent. */
const CGROUP_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function isValidCgroupName(name: string): boolean {
  return CGROUP_NAME.test(name);
}

/** A worker that finds the parent just made by another may see it before that one marks it. */
const MARK_WAIT_MS = 2_000;

/**
 * Creates Brig's parent cgroups (one per hierarchy) and marks them, or
 * accepts existing ones only if they carry Brig's mark: Brig sweeps every
 * child of its parent, so a parent that someone else made
 * (BRIG_CGROUP_PARENT naming a cgroup of systemd's, say) would have its
 * children killed and removed. Nothing is created while any of them is
 * someone else's.
 */
export function ensureOwnedParents(ops: CgroupDirOps, dirs: readonly string[]): void {
  refuseForeignParents(ops, dirs);
  for (const dir of dirs) {
    if (makeCgroupDir(ops, dir)) markCreatedByBrig(ops, dir);
    else waitForMark(ops, dir);
  }
}

/** Throws cgroup_parent_foreign for any of `dirs` that exists without Brig's mark; writes nothing, so it can run before any other step. */
export function refuseForeignParents(ops: CgroupDirOps, dirs: readonly string[]): void {
  for (const dir of dirs) if (pathExists(dir)) waitForMark(ops, dir);
}

/** An existing parent must carry the mark; a worker that made it a moment ago may not have set it yet. */
function waitForMark(ops: CgroupDirOps, dir: string): void {
  const deadline = Date.now() + MARK_WAIT_MS;
  while (!isCreatedByBrig(ops, dir)) {
    if (Date.now() > deadline) {
      throw new HostError(
        'cgroup_parent_foreign',
        `cgroup ${dir} exists and was not created by Brig: Brig manages only cgroups it made, and would remove this one's children. Set BRIG_CGROUP_PARENT to another name, or remove ${dir} if nothing uses it`,
      );
    }
    Atomics.wait(SLEEPER, 0, 0, POLL_INTERVAL_MS);
  }
}

/** For a short synchronous wait at start (ensureParent is synchronous). */
const SLEEPER = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

/** A cgroup that no longer exists has no processes: teardown may race with another teardown of the same cgroup. */
export function readProcs(procsPath: string): number[] {
  const text = readTextIfExists(procsPath);
  return text === undefined ? [] : parsePids(text, procsPath);
}

/**
 * SIGKILL every process listed in the given cgroup.procs files, for kernels or
 * hierarchies without cgroup.kill. A pid can be reused between reading it and
 * killing it; the window is tiny, and sandboxes run in their own pid namespace,
 * so killing its init takes every other member with it.
 */
export function killListedProcesses(procsPaths: readonly string[]): void {
  for (let round = 0; round < MAX_KILL_ROUNDS; round++) {
    const pids = procsPaths.flatMap(readProcs).filter((pid) => !NEVER_KILLED_PIDS.has(pid));
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH')
          throw new SandboxError('cgroup_kill_failed', `cannot kill pid ${pid} listed in a cgroup`, { cause: err });
      }
    }
  }
}

/** Poll until `isEmpty()`; `whileWaiting` runs between polls (e.g. to kill stragglers forked meanwhile). */
export async function waitUntilEmpty(isEmpty: () => boolean, timeoutMs: number, what: string, whileWaiting?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!isEmpty()) {
    if (Date.now() >= deadline) {
      throw new SandboxError(
        'cgroup_not_empty',
        `${what} still has processes after ${timeoutMs} ms: check for processes stuck in uninterruptible sleep (state D)`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
    whileWaiting?.();
  }
}

/**
 * rmdir a cgroup and any child cgroups, deepest first. The kernel can report
 * EBUSY for a moment after the last process left, so busy dirs are retried
 * until the deadline.
 */
export async function removeCgroupTree(ops: CgroupDirOps, dir: string, deadlineMs: number): Promise<void> {
  for (const child of listChildCgroups(dir)) await removeCgroupTree(ops, `${dir}/${child}`, deadlineMs);
  for (;;) {
    try {
      removeCgroupDir(ops, dir);
      return;
    } catch (err) {
      if (!(err instanceof BrigError && err.code === 'cgroup_busy') || Date.now() >= deadlineMs) throw err;
      await sleep(POLL_INTERVAL_MS);
    }
  }
}

/** What teardown needs to know about a cgroup, whichever version it is. */
export interface TeardownTarget {
  /** Only dirs that exist; a half-removed cgroup is torn down from what is left. */
  dirs: readonly string[];
  dirOps: CgroupDirOps;
  killAll(): void;
  isEmpty(): boolean;
}

/** Kill, wait for the processes to be gone (re-killing anything forked meanwhile), then rmdir. */
export async function teardownCgroup(target: TeardownTarget, timeoutMs: number = DESTROY_TIMEOUT_MS): Promise<void> {
  if (target.dirs.length === 0) return;
  const what = `cgroup ${target.dirs.join(', ')}`;
  target.killAll();
  await waitUntilEmpty(
    () => target.isEmpty(),
    timeoutMs,
    what,
    () => target.killAll(),
  );
  const deadlineMs = Date.now() + timeoutMs;
  for (const dir of target.dirs) await removeCgroupTree(target.dirOps, dir, deadlineMs);
}

/** rmdir each parent that has no child cgroup left; a busy one (a racing worker) is left alone. */
export function removeParentsIfUnused(ops: CgroupDirOps, parents: readonly string[]): void {
  for (const parent of parents) {
    if (listChildCgroups(parent).length > 0) continue;
    try {
      removeCgroupDir(ops, parent);
    } catch (err) {
      if (!(err instanceof BrigError && err.code === 'cgroup_busy')) throw err;
    }
  }
}

/**
 * Idempotent teardown: concurrent and repeated calls share one attempt; a
 * failed attempt is forgotten so that a later call may retry.
 */
export class OnceTeardown {
  private attempt?: Promise<void>;

  constructor(private readonly tearDown: () => Promise<void>) {}

  run(): Promise<void> {
    this.attempt ??= this.tearDown().catch((err: unknown) => {
      this.attempt = undefined;
      throw err;
    });
    return this.attempt;
  }
}
