/** One sandbox slot's cgroup on v2: a single directory under Brig's parent. */
import { type CgroupDirOps, makeCgroupDir, pathExists, removeCgroupDir, writeText } from '../files.ts';
import { KernelMemoryFloor } from '../kernel-memory.ts';
import { killListedProcesses, OnceTeardown, readProcs, teardownCgroup, waitUntilEmpty } from '../lifecycle.ts';
import { checkLimits, limitsKey } from '../limits.ts';
import type { CgroupLimits, CgroupUsage, RunCgroup } from '../manager.ts';
import { applyPidsLimit } from '../pids.ts';
import { V2CpuController } from './cpu.ts';
import { V2MemoryController } from './memory.ts';
import { V2MemoryPeak } from './memory-peak.ts';

/** cgroup.kill (≥ 5.14) kills every process at once, forks in flight included; older kernels get a kill loop. */
function killAllIn(dir: string): void {
  const killPath = `${dir}/cgroup.kill`;
  if (pathExists(killPath)) writeText(killPath, '1');
  else killListedProcesses([`${dir}/cgroup.procs`]);
}

function isEmptyDir(dir: string): boolean {
  return readProcs(`${dir}/cgroup.procs`).length === 0;
}

/** Kill, wait and rmdir a v2 cgroup (and any children); for destroy() and for sweeping leftovers. */
export function tearDownV2(dir: string, dirOps: CgroupDirOps): Promise<void> {
  return teardownCgroup({
    dirs: pathExists(dir) ? [dir] : [],
    dirOps,
    killAll: () => killAllIn(dir),
    isEmpty: () => isEmptyDir(dir),
  });
}

export class V2RunCgroup implements RunCgroup {
  readonly name: string;
  readonly dirs: string[];
  private readonly dir: string;
  private readonly dirOps: CgroupDirOps;
  private memory: V2MemoryController;
  private cpu: V2CpuController;
  private peak: V2MemoryPeak;
  private kernelMemory: KernelMemoryFloor;
  /** A run was counted since the directory was created: its memory.peak (if not resettable) holds that run. */
  private usedSinceCreation: boolean;
  private appliedLimitsKey?: string;
  private readonly teardown = new OnceTeardown(() => this.tearDown());

  /** Opens the slot's cgroup, creating it if missing. */
  static open(name: string, dir: string, dirOps: CgroupDirOps): V2RunCgroup {
    const created = makeCgroupDir(dirOps, dir);
    const cgroup = new V2RunCgroup(name, dir, dirOps, !created);
    cgroup.recreateIfPeakNeedsIt();
    return cgroup;
  }

  private constructor(name: string, dir: string, dirOps: CgroupDirOps, reused: boolean) {
    this.name = name;
    this.dir = dir;
    this.dirs = [dir];
    this.dirOps = dirOps;
    this.memory = new V2MemoryController(dir);
    this.cpu = new V2CpuController(dir);
    this.peak = V2MemoryPeak.open(dir);
    this.kernelMemory = new KernelMemoryFloor(() => this.memory.kernelBytes());
    this.usedSinceCreation = reused;
  }

  renew(): Promise<void> {
    if (this.recreateIfPeakNeedsIt()) return Promise.resolve(); // the last sandbox's leftovers stay with the old directory
    return this.kernelMemory.settle();
  }

  applyLimits(limits: CgroupLimits): void {
    checkLimits(limits);
    const key = limitsKey(limits);
    if (key === this.appliedLimitsKey) return;
    this.appliedLimitsKey = undefined; // a failed write must not leave a stale key behind
    this.memory.applyLimit(limits.memoryBytes);
    this.cpu.applyQuota(limits.cpuQuotaCores);
    applyPidsLimit(this.dir, limits.pids);
    this.appliedLimitsKey = key;
  }

  resetWaitingCounters(): void {
    this.cpu.reset();
    this.memory.reset();
  }

  resetPeak(): void {
    this.peak.reset(!this.usedSinceCreation);
    this.usedSinceCreation = true;
  }

  usage(): CgroupUsage {
    return { cpuNs: this.cpu.cpuNs(), memoryPeakBytes: this.peak.peakBytes(), oomKills: this.memory.oomKills() };
  }

  cpuNs(): number {
    return this.cpu.cpuNs();
  }

  isEmpty(): boolean {
    return isEmptyDir(this.dir);
  }

  killAll(): void {
    killAllIn(this.dir);
  }

  waitEmpty(timeoutMs: number): Promise<void> {
    return waitUntilEmpty(() => this.isEmpty(), timeoutMs, `cgroup ${this.dir}`);
  }

  destroy(): Promise<void> {
    return this.teardown.run();
  }

  private async tearDown(): Promise<void> {
    this.closeFiles();
    await tearDownV2(this.dir, this.dirOps);
  }

  private closeFiles(): void {
    this.memory.close();
    this.cpu.close();
    this.peak.close();
  }

  /**
   * With a memory.peak that cannot be reset, a new directory is the only way
   * to restart the watermark: rmdir + mkdir when a run was counted here and no
   * process is left. Held fds point into the old directory and are reopened,
   * and the limits are written again. A busy cgroup is left as it is; the
   * peak then degrades as memory-peak.ts describes.
   */
  private recreateIfPeakNeedsIt(): boolean {
    if (this.peak.mode !== 'since-creation' || !this.usedSinceCreation || !this.isEmpty()) return false;
    this.closeFiles();
    removeCgroupDir(this.dirOps, this.dir);
    makeCgroupDir(this.dirOps, this.dir);
    this.memory = new V2MemoryController(this.dir);
    this.cpu = new V2CpuController(this.dir);
    this.peak = V2MemoryPeak.open(this.dir);
    this.kernelMemory = new KernelMemoryFloor(() => this.memory.kernelBytes());
    this.usedSinceCreation = false;
    this.appliedLimitsKey = undefined;
    return true;
  }
}
