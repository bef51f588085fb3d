/** v2 memory controller: the limit with swap shut off, whole-cgroup OOM kills, and the OOM-kill counter. */
import { OpenCgroupFile, pathExists, writeText } from '../files.ts';
import { counterDelta, hasKey, parseKeyedCounter } from '../parse.ts';

export class V2MemoryController {
  private readonly maxPath: string;
  private readonly swapMaxPath: string;
  private readonly oomGroupPath: string;
  private readonly eventsPath: string;
  private readonly statPath: string;
  private eventsFile?: OpenCgroupFile;
  private statFile?: OpenCgroupFile;
  private baselineOomKills = 0n;

  constructor(dir: string) {
    this.maxPath = `${dir}/memory.max`;
    // Absent without swap accounting; memory.oom.group before 4.19.
    this.swapMaxPath = `${dir}/memory.swap.max`;
    this.oomGroupPath = `${dir}/memory.oom.group`;
    // The .local variant (≥ 5.7) counts this cgroup alone, not its descendants.
    const localEvents = `${dir}/memory.events.local`;
    this.eventsPath = pathExists(localEvents) ? localEvents : `${dir}/memory.events`;
    this.statPath = `${dir}/memory.stat`;
  }

  /** oom.group=1: one OOM kill takes the whole sandbox, so no half-dead process tree lingers. */
  applyLimit(memoryBytes: number): void {
    writeText(this.maxPath, String(memoryBytes));
    if (pathExists(this.swapMaxPath)) writeText(this.swapMaxPath, '0');
    if (pathExists(this.oomGroupPath)) writeText(this.oomGroupPath, '1');
  }

  reset(): void {
    this.baselineOomKills = this.readOomKills();
  }

  oomKills(): number {
    return counterDelta(this.readOomKills(), this.baselineOomKills);
  }

  /**
   * Kernel memory charged to the cgroup: memory.stat's "kernel" (≥ 5.18), else
   * its "slab" (inodes and dentries are slab objects); null with neither.
   */
  kernelBytes(): number | null {
    this.statFile ??= OpenCgroupFile.openForReading(this.statPath);
    const stat = this.statFile.read();
    for (const key of ['kernel', 'slab']) if (hasKey(stat, key)) return Number(parseKeyedCounter(stat, key, this.statPath));
    return null;
  }

  close(): void {
    this.eventsFile?.close();
    this.statFile?.close();
  }

  private readOomKills(): bigint {
    this.eventsFile ??= OpenCgroupFile.openForReading(this.eventsPath);
    return parseKeyedCounter(this.eventsFile.read(), 'oom_kill', this.eventsPath);
  }
}
