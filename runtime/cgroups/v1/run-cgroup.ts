/**
 * One sandbox slot's cgroup on v1: a directory in each controller hierarchy,
 * each controller handled by its own class.
 */
import { type CgroupDirOps, pathExists } from '../files.ts';
import { KernelMemoryFloor } from '../kernel-memory.ts';
import { killListedProcesses, OnceTeardown, readProcs, teardownCgroup, waitUntilEmpty } from '../lifecycle.ts';
import { checkLimits, limitsKey } from '../limits.ts';
import type { CgroupLimits, CgroupUsage, RunCgroup } from '../manager.ts';
import { applyPidsLimit } from '../pids.ts';
import { V1CpuAcctController, V1CpuController } from './cpu.ts';
import { V1MemoryController } from './memory.ts';

/** This slot's directory in each hierarchy; co-mounted controllers share one. */
export interface V1ControllerDirs {
  memory: string;
  cpu: string;
  cpuacct: string;
  pids: string;
}

export function uniqueDirs(dirs: V1ControllerDirs): string[] {
  return [...new Set([dirs.memory, dirs.cpu, dirs.cpuacct, dirs.pids])];
}

export class V1RunCgroup implements RunCgroup {
  readonly name: string;
  readonly dirs: string[];
  private readonly controllerDirs: V1ControllerDirs;
  private readonly procsPaths: string[];
  private readonly dirOps: CgroupDirOps;
  private readonly memory: V1MemoryController;
  private readonly kernelMemory: KernelMemoryFloor;
  private readonly cpu: V1CpuController;
  private readonly cpuacct: V1CpuAcctController;
  private appliedLimitsKey?: string;
  private readonly teardown = new OnceTeardown(() => this.tearDown());

  constructor(name: string, controllerDirs: V1ControllerDirs, dirOps: CgroupDirOps) {
    this.name = name;
    this.controllerDirs = controllerDirs;
    this.dirs = uniqueDirs(controllerDirs);
    this.procsPaths = this.dirs.map((dir) => `${dir}/cgroup.procs`);
    this.dirOps = dirOps;
    this.memory = new V1MemoryController(controllerDirs.memory);
    this.kernelMemory = new KernelMemoryFloor(() => this.memory.kernelBytes());
    this.cpu = new V1CpuController(controllerDirs.cpu);
    this.cpuacct = new V1CpuAcctController(controllerDirs.cpuacct);
  }

  /** v1 resets its peak (memory.max_usage_in_bytes) in place: the cgroup is kept, and waited on. */
  renew(): Promise<void> {
    return this.kernelMemory.settle();
  }

  /** Writes nothing when the limits are unchanged since the last call. */
  applyLimits(limits: CgroupLimits): void {
    checkLimits(limits);
    const key = limitsKey(limits);
    if (key === this.appliedLimitsKey) return;
    this.appliedLimitsKey = undefined; // a failed write must not leave a stale key behind
    this.memory.applyLimit(limits.memoryBytes);
    this.cpu.applyQuota(limits.cpuQuotaCores);
    applyPidsLimit(this.controllerDirs.pids, limits.pids);
    this.appliedLimitsKey = key;
  }

  resetWaitingCounters(): void {
    this.cpuacct.reset();
    this.memory.resetOomKills();
  }

  resetPeak(): void {
    this.memory.resetPeak();
  }

  usage(): CgroupUsage {
    return { cpuNs: this.cpuacct.cpuNs(), memoryPeakBytes: this.memory.peakBytes(), oomKills: this.memory.oomKills() };
  }

  cpuNs(): number {
    return this.cpuacct.cpuNs();
  }

  /** Every hierarchy is checked: a launcher that failed halfway may have moved its child into only some. */
  isEmpty(): boolean {
    return this.procsPaths.every((path) => readProcs(path).length === 0);
  }

  /** v1 has no cgroup.kill: kill what cgroup.procs lists, re-reading it to catch fresh forks. */
  killAll(): void {
    killListedProcesses(this.procsPaths);
  }

  waitEmpty(timeoutMs: number): Promise<void> {
    return waitUntilEmpty(() => this.isEmpty(), timeoutMs, `cgroup ${this.dirs.join(', ')}`);
  }

  destroy(): Promise<void> {
    return this.teardown.run();
  }

  private async tearDown(): Promise<void> {
    this.memory.close();
    this.cpuacct.close();
    // A cgroup half-removed by an earlier attempt is torn down from what is left.
    await teardownCgroup({
      dirs: this.dirs.filter(pathExists),
      dirOps: this.dirOps,
      killAll: () => this.killAll(),
      isEmpty: () => this.isEmpty(),
    });
  }
}
