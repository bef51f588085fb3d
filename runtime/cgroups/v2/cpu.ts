/** v2 cpu controller: cpu.max for the quota, cpu.stat usage_usec for CPU time. */

import { NS_PER_US } from '../../units.ts';
import { OpenCgroupFile, writeText } from '../files.ts';
import { CPU_PERIOD_US, cpuQuotaUs } from '../limits.ts';
import { counterDelta, parseKeyedCounter } from '../parse.ts';

export class V2CpuController {
  private readonly maxPath: string;
  private readonly statPath: string;
  private statFile?: OpenCgroupFile;
  private baselineUs = 0n;

  constructor(dir: string) {
    this.maxPath = `${dir}/cpu.max`;
    this.statPath = `${dir}/cpu.stat`;
  }

  applyQuota(cores: number): void {
    writeText(this.maxPath, `${cpuQuotaUs(cores)} ${CPU_PERIOD_US}`);
  }

  reset(): void {
    this.baselineUs = this.readUsageUs();
  }

  cpuNs(): number {
    return counterDelta(this.readUsageUs(), this.baselineUs) * NS_PER_US;
  }

  close(): void {
    this.statFile?.close();
  }

  private readUsageUs(): bigint {
    this.statFile ??= OpenCgroupFile.openForReading(this.statPath);
    return parseKeyedCounter(this.statFile.read(), 'usage_usec', this.statPath);
  }
}
