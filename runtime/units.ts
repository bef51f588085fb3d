/** Unit conversions, in one place, so no magic 1024s and 1e6s hide in the code. */
export const BYTES_PER_KB = 1024;
export const BYTES_PER_MB = 1024 * 1024;
export const NS_PER_MS = 1_000_000;
export const NS_PER_US = 1000;
export const US_PER_MS = 1000;
export const MS_PER_S = 1000;

export const mbToBytes = (mb: number): number => Math.round(mb * BYTES_PER_MB);
export const bytesToKb = (bytes: number): number => Math.round(bytes / BYTES_PER_KB);
export const nsToMs = (ns: number): number => Math.round(ns / NS_PER_MS);
export const usToMs = (us: number): number => Math.round(us / US_PER_MS);
export const msToNs = (ms: number): number => ms * NS_PER_MS;
/** RLIMIT_CPU counts whole seconds; round up so the cgroup limit always fires first. */
export const msToWholeSecondsCeil = (ms: number): number => Math.ceil(ms / MS_PER_S);
