/**
 * v1 cpu controller (CFS quota) and cpuacct controller (CPU time). They are
 * separate hierarchies on some hosts and one co-mounted "cpu,cpuacct" on others.
 */
import { OpenCgroupFile, writeText } from '../files.ts';
import { CPU_PERIOD_US, cpuQuotaUs } from '../limits.ts';
import { counterDelta, parseCounter } from '../parse.ts';

export class V1CpuController {
  private readonly periodPath: string;
  private readonly quotaPath: string;

  constructor(dir: string) {
    this.periodPath = `${dir}/cpu.cfs_period_us`;
    this.quotaPath = `${dir}/cpu.cfs_quota_us`;
  }

  /** Period first: the kernel checks each quota against the period in force when it is written. */
  applyQuota(cores: number): void {
    writeText(this.periodPath, String(CPU_PERIOD_US));
    writeText(this.quotaPath, String(cpuQuotaUs(cores)));
  }
}

export class V1CpuAcctController {
  private readonly usagePath: string;
  private usageFile?: OpenCgroupFile;
  private baselineNs = 0n;

  constructor(dir: string) {
    this.usagePath = `${dir}/cpuacct.usage`;
  }

  /** Remember the counter rather than writing 0 to it: a read cannot fail halfway or race another writer. */
  reset(): void {
    this.baselineNs = this.readNs();
  }

  cpuNs(): number {
    return counterDelta(this.readNs(), this.baselineNs);
  }

  close(): void {
    this.usageFile?.close();
  }

  private readNs(): bigint {
    this.usageFile ??= OpenCgroupFile.openForReading(this.usagePath);
    return parseCounter(this.usageFile.read(), this.usagePath);
  }
}
