/**
 * v1 memory controller: the limit with swap shut off, the peak since reset and
 * the OOM-kill counter.
 */
import { OpenCgroupFile, pathExists, readText, writeText } from '../files.ts';
import { counterDelta, parseCounter, parseKeyedCounter } from '../parse.ts';

export class V1MemoryController {
  private readonly limitPath: string;
  private readonly swapLimitPath: string;
  private readonly tcpLimitPath: string;
  private readonly maxUsagePath: string;
  private readonly usagePath: string;
  private readonly oomControlPath: string;
  private readonly kernelUsagePath: string | null;
  private maxUsageFile?: OpenCgroupFile;
  private kernelUsageFile?: OpenCgroupFile;
  private usageFile?: OpenCgroupFile;
  private oomControlFile?: OpenCgroupFile;
  private baselineUsageBytes = 0n;
  private baselineOomKills = 0n;

  constructor(dir: string) {
    this.limitPath = `${dir}/memory.limit_in_bytes`;
    // memory + swap; absent when the kernel does no swap accounting (swapaccount=0).
    this.swapLimitPath = `${dir}/memory.memsw.limit_in_bytes`;
    // v1 charges TCP socket buffers to a counter of their own, and only once
    // this limit has been written; v2 counts them in memory.current anyway.
    this.tcpLimitPath = `${dir}/memory.kmem.tcp.limit_in_bytes`;
    this.maxUsagePath = `${dir}/memory.max_usage_in_bytes`;
    this.usagePath = `${dir}/memory.usage_in_bytes`;
    this.oomControlPath = `${dir}/memory.oom_control`;
    // Absent on kernels built without kernel memory accounting.
    const kernelUsagePath = `${dir}/memory.kmem.usage_in_bytes`;
    this.kernelUsagePath = pathExists(kernelUsagePath) ? kernelUsagePath : null;
  }

  /** Setting memory+swap equal to memory leaves no room for swap; TCP buffers get the same cap. */
  applyLimit(memoryBytes: number): void {
    const value = String(memoryBytes);
    if (pathExists(this.tcpLimitPath)) writeText(this.tcpLimitPath, value);
    if (!pathExists(this.swapLimitPath)) {
      writeText(this.limitPath, value);
      return;
    }
    // The kernel keeps memory ≤ memory+swap at every step, so when raising the
    // limit past the current memsw value, memsw has to go first.
    const currentSwapLimitBytes = parseCounter(readText(this.swapLimitPath), this.swapLimitPath);
    if (BigInt(memoryBytes) > currentSwapLimitBytes) {
      writeText(this.swapLimitPath, value);
      writeText(this.limitPath, value);
    } else {
      writeText(this.limitPath, value);
      writeText(this.swapLimitPath, value);
    }
  }

  /**
   * Writing max_usage_in_bytes makes the kernel restart the watermark at the
   * current usage; that usage (mostly page cache left by earlier runs, which
   * force_empty would evict at a cost to every run) is the baseline.
   */
  resetPeak(): void {
    // Kept open: a step resets on the request's path, and open/close is most of the cost.
    this.maxUsageFile ??= OpenCgroupFile.openForReadWrite(this.maxUsagePath);
    this.usageFile ??= OpenCgroupFile.openForReading(this.usagePath);
    this.maxUsageFile.write('0');
    this.baselineUsageBytes = parseCounter(this.usageFile.read(), this.usagePath);
  }

  resetOomKills(): void {
    this.baselineOomKills = this.readOomKills();
  }

  peakBytes(): number {
    this.maxUsageFile ??= OpenCgroupFile.openForReadWrite(this.maxUsagePath);
    return counterDelta(parseCounter(this.maxUsageFile.read(), this.maxUsagePath), this.baselineUsageBytes);
  }

  /** Kernel memory charged to the cgroup (inodes, dentries, page tables...); null where the kernel does not count it. */
  kernelBytes(): number | null {
    if (!this.kernelUsagePath) return null;
    this.kernelUsageFile ??= OpenCgroupFile.openForReading(this.kernelUsagePath);
    return Number(parseCounter(this.kernelUsageFile.read(), this.kernelUsagePath));
  }

  oomKills(): number {
    return counterDelta(this.readOomKills(), this.baselineOomKills);
  }

  close(): void {
    this.maxUsageFile?.close();
    this.usageFile?.close();
    this.oomControlFile?.close();
    this.kernelUsageFile?.close();
  }

  private readOomKills(): bigint {
    this.oomControlFile ??= OpenCgroupFile.openForReading(this.oomControlPath);
    return parseKeyedCounter(this.oomControlFile.read(), 'oom_kill', this.oomControlPath);
  }
}
