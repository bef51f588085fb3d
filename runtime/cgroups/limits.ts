/**
 * The limits a cgroup enforces and how they turn into kernel values. Unit
 * conversions specific to cgroupfs live here, next to their one use.
 */
import { SandboxError } from '../errors.ts';
import type { CgroupLimits } from './manager.ts';

/** CFS period: the kernel default; quota is expressed against it. */
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota below 1 ms. */
export const MIN_CPU_QUOTA_US = 1000;

export function checkLimits(limits: CgroupLimits): void {
  const positiveInteger = (value: number) => Number.isSafeInteger(value) && value > 0;
  if (!positiveInteger(limits.memoryBytes)) invalid('memoryBytes', limits.memoryBytes);
  if (!positiveInteger(limits.pids)) invalid('pids', limits.pids);
  if (!Number.isFinite(limits.cpuQuotaCores) || limits.cpuQuotaCores <= 0) invalid('cpuQuotaCores', limits.cpuQuotaCores);
}

function invalid(name: string, value: number): never {
  throw new SandboxError('cgroup_invalid_limit', `cgroup limit ${name} must be a positive number, got ${value}`);
}

/** CFS quota for a number of cores, e.g. 1 core → quota equal to the period. */
export function cpuQuotaUs(cores: number): number {
  return Math.max(MIN_CPU_QUOTA_US, Math.round(cores * CPU_PERIOD_US));
}

/** Identifies a set of limits, so a cgroup can skip rewriting the ones it already has. */
export function limitsKey(limits: CgroupLimits): string {
  return `${limits.memoryBytes}/${limits.cpuQuotaCores}/${limits.pids}`;
}
