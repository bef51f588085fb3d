/**
 * One cgroup interface with a v1 and a v2 implementation behind it (as runc's
 * fs/ and fs2/). Callers see only CgroupManager and RunCgroup; detectCgroups()
 * picks the implementation the host supports.
 */
import { ConfigError, HostError } from '../errors.ts';
import { type CgroupDirOps, hostDirOps, readText } from './files.ts';
import { isValidCgroupName } from './lifecycle.ts';
import { type CgroupMount, cgroup2Mounts, findV1Controllers, parseCgroupMounts } from './mountinfo.ts';
import { parseNameList } from './parse.ts';
import { V1_CONTROLLERS, V1CgroupManager, type V1MountPoints } from './v1/manager.ts';
import { V2_CONTROLLERS, V2CgroupManager } from './v2/manager.ts';
import { DEFAULT_PROC_CGROUP_PATH, isHierarchyRoot, PROCESS_LEAF_NAME } from './v2/placement.ts';

export interface CgroupLimits {
  memoryBytes: number;
  /** e.g. 1 → quota = period. */
  cpuQuotaCores: number;
  pids: number;
}

export interface CgroupUsage {
  /** CPU time of all processes since reset. */
  cpuNs: number;
  /** Peak since reset, minus the usage at reset. */
  memoryPeakBytes: number;
  /** OOM kills since reset. */
  oomKills: number;
}

export interface RunCgroup {
  readonly name: string;
  /** Directories the sandbox's init must be moved into: one per v1 hierarchy (memory, cpu, cpuacct, pids — deduplicated when co-mounted), or the single v2 dir. The launcher writes its child's pid to <dir>/cgroup.procs. */
  readonly dirs: string[];
  /**
   * Call before a sandbox's init is moved in (when a sandbox is prepared),
   * with no process left in the cgroup. On v2 kernels whose memory.peak
   * cannot be reset (< 6.12) a used cgroup is recreated here, so the next peak
   * is exact. Where the cgroup is kept, it resolves once the kernel memory the
   * last sandbox left charged to it has been given back, within a bound (see
   * kernel-memory.ts), so the next program gets its whole memory limit.
   */
  renew(): Promise<void>;
  /**
   * Memory limit with swap disabled, CPU quota, pids.max. Call before every
   * run, with the prepared sandbox's init already inside (its few pages count
   * against the limit, as before): it writes nothing when the limits are
   * unchanged.
   */
  applyLimits(limits: CgroupLimits): void;
  /**
   * The baselines of the counters that nothing moves while a prepared
   * sandbox waits for its go-ahead (CPU time, OOM kills): called once it is
   * ready, off the step's path. With resetPeak, the next usage() describes
   * only what happens from then on.
   */
  resetWaitingCounters(): void;
  /**
   * The memory peak's baseline: called right before the go-ahead, since
   * memory the last sandbox's teardown was still giving back when this one
   * became ready would hide a small program's peak.
   */
  resetPeak(): void;
  /** Cheap enough to call every ~20 ms while a program runs. On v2 before kernel 6.12 see v2/memory-peak.ts for how exact the peak is. */
  usage(): CgroupUsage;
  /** Just the CPU counter since reset, the cheapest possible read. */
  cpuNs(): number;
  /** No processes left (a removed cgroup has none). */
  isEmpty(): boolean;
  /** SIGKILL every process in it. */
  killAll(): void;
  /** Poll until no processes are left; SandboxError on timeout. */
  waitEmpty(timeoutMs: number): Promise<void>;
  /** Idempotent: killAll, waitEmpty, rmdir every dir. */
  destroy(): Promise<void>;
}

export interface CgroupCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface CgroupManager {
  readonly version: 1 | 2;
  /** Default 'brig'. */
  readonly parentName: string;
  /**
   * Create the parent cgroup(s) and, on v2, enable memory, cpu and pids for
   * its children. v2 builds inside the cgroup Brig runs in, whose processes
   * first move into a leaf (v2/placement.ts, v2/delegation.ts); v1 at the top
   * of each hierarchy (v1/manager.ts).
   */
  ensureParent(): void;
  /** A cgroup for one sandbox slot, created if missing. May be reused from run to run by the same slot. */
  open(name: string): RunCgroup;
  /** Remove leftover children of the parent whose name `isLive(name)` rejects: kill their processes, rmdir. Returns the removed names. */
  sweep(isLive: (name: string) => boolean): Promise<string[]>;
  /** For `brig doctor`: one entry per check. */
  describe(): CgroupCheck[];
  /** Names of the child cgroups under the parent (in any hierarchy). */
  childNames(): string[];
  /** Removes the parent when no slot of any process is left under it (another worker may still use it). */
  removeParentIfUnused(): void;
}

export interface DetectCgroupsOptions {
  /** The cgroup2 mount to prefer, default /sys/fs/cgroup. v1 mount points always come from mountinfo. */
  root?: string;
  mountinfoPath?: string;
  /** For tests: the file that says which cgroup this process is in, default /proc/self/cgroup (v2 builds inside it). */
  procCgroupPath?: string;
  parentName?: string;
  /** Force a version instead of detecting it. */
  version?: 1 | 2;
  /** For tests on a fake cgroupfs: how cgroup dirs are made and removed. */
  dirOps?: CgroupDirOps;
}

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';
export const DEFAULT_MOUNTINFO_PATH = '/proc/self/mountinfo';
export const DEFAULT_PARENT_NAME = 'brig';

export function detectCgroups(opts: DetectCgroupsOptions = {}): CgroupManager {
  const parentName = opts.parentName ?? DEFAULT_PARENT_NAME;
  if (!isValidCgroupName(parentName)) {
    throw new ConfigError(
      'cgroup_invalid_name',
      `cgroup parent name "${parentName}" must be one path component of letters, digits, '.', '_' or '-'`,
    );
  }
  const dirOps = opts.dirOps ?? hostDirOps;
  const mounts = readMounts(opts.mountinfoPath ?? DEFAULT_MOUNTINFO_PATH);
  const problems: string[] = [];

  if (opts.version !== 1) {
    const mount = findUsableCgroup2(mounts, opts.root ?? DEFAULT_CGROUP_ROOT, problems);
    if (mount !== undefined) {
      if (parentName === PROCESS_LEAF_NAME) {
        throw new ConfigError(
          'cgroup_invalid_name',
          `cgroup parent name "${parentName}" is the leaf that holds Brig's own processes on cgroup v2: choose another BRIG_CGROUP_PARENT`,
        );
      }
      return new V2CgroupManager(mount, parentName, dirOps, opts.procCgroupPath ?? DEFAULT_PROC_CGROUP_PATH);
    }
  }
  if (opts.version !== 2) {
    const found = findV1Controllers(mounts, V1_CONTROLLERS);
    const missing = V1_CONTROLLERS.filter((controller) => !found.has(controller));
    if (missing.length === 0) return new V1CgroupManager(v1MountPoints(found), parentName, dirOps);
    problems.push(`cgroup v1 lacks the ${missing.join(', ')} controller(s)`);
  }
  const wanted =
    opts.version === undefined
      ? 'cgroup v2 with memory, cpu and pids, or cgroup v1 with memory, cpu, cpuacct and pids'
      : `cgroup v${opts.version}`;
  throw new HostError(
    'cgroup_unavailable',
    `no usable cgroup hierarchy (${problems.join('; ')}): mount ${wanted}; on a host, e.g. boot with systemd.unified_cgroup_hierarchy=1; in a container, give it a cgroup of its own with those controllers, writable (README, Privileges)`,
  );
}

function v1MountPoints(found: Map<string, string>): V1MountPoints {
  const at = (controller: string): string => found.get(controller) ?? '';
  return { memory: at('memory'), cpu: at('cpu'), cpuacct: at('cpuacct'), pids: at('pids') };
}

function readMounts(mountinfoPath: string): CgroupMount[] {
  try {
    return parseCgroupMounts(readText(mountinfoPath));
  } catch (err) {
    throw new HostError('cgroup_unavailable', `cannot read ${mountinfoPath} to find cgroup mounts: is /proc mounted?`, { cause: err });
  }
}

/** The first cgroup2 mount, `preferredRoot` first, whose cgroup.controllers offers every controller Brig needs. */
function findUsableCgroup2(mounts: CgroupMount[], preferredRoot: string, problems: string[]): CgroupMount | undefined {
  const candidates = cgroup2Mounts(mounts).sort((a, b) => Number(b.mountPoint === preferredRoot) - Number(a.mountPoint === preferredRoot));
  if (candidates.length === 0) problems.push('no cgroup2 mount');
  for (const mount of candidates) {
    const { mountPoint } = mount;
    let controllers: string[];
    try {
      controllers = parseNameList(readText(`${mountPoint}/cgroup.controllers`));
    } catch {
      problems.push(`cannot read ${mountPoint}/cgroup.controllers`);
      continue;
    }
    const missing = V2_CONTROLLERS.filter((controller) => !controllers.includes(controller));
    if (missing.length === 0) return mount;
    // A mount that shows a cgroup below the root (a container's namespace) offers what its parent delegated.
    const why = isHierarchyRoot(mountPoint)
      ? ''
      : ', which were not delegated to the cgroup it shows (Delegate=yes, or a namespace over a delegated cgroup)';
    problems.push(`cgroup2 at ${mountPoint} lacks the ${missing.join(', ')} controller(s)${why}`);
  }
  return undefined;
}
