/**
 * Parsers for the formats cgroupfs files use: a single integer, a flat keyed
 * list ("key value" per line) and a space-separated list. Counters are parsed
 * as bigint because cpuacct.usage, in ns, passes 2^53 after ~104 days of CPU
 * time in one long-lived cgroup; only deltas are turned into numbers.
 */
import { SandboxError } from '../errors.ts';

const INTEGER = /^\d+$/;

function badFormat(path: string, what: string, text: string): never {
  throw new SandboxError('cgroup_bad_format', `unexpected content in ${path}: expected ${what}, got "${text.trim().slice(0, 80)}"`);
}

export function parseCounter(text: string, path: string): bigint {
  const value = text.trim();
  if (!INTEGER.test(value)) badFormat(path, 'a non-negative integer', text);
  return BigInt(value);
}

/** One value of a flat keyed file such as cpu.stat, memory.events or memory.oom_control. */
export function parseKeyedCounter(text: string, key: string, path: string): bigint {
  for (const line of text.split('\n')) {
    const [name, value, ...rest] = line.trim().split(/\s+/);
    if (name === key && value !== undefined && rest.length === 0 && INTEGER.test(value)) return BigInt(value);
  }
  return badFormat(path, `a "${key} <integer>" line`, text);
}

export function hasKey(text: string, key: string): boolean {
  return text.split('\n').some((line) => line.trim().split(/\s+/)[0] === key);
}

/** cgroup.controllers, cgroup.subtree_control: space-separated names. */
export function parseNameList(text: string): string[] {
  return text.split(/\s+/).filter((name) => name.length > 0);
}

/** cgroup.procs: one pid per line. */
export function parsePids(text: string, path: string): number[] {
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    const value = line.trim();
    if (value.length === 0) continue;
    if (!INTEGER.test(value)) badFormat(path, 'one pid per line', text);
    pids.push(Number(value));
  }
  return pids;
}

/** A counter delta as a number; a counter that went backwards (cgroup recreated under us) counts as zero. */
export function counterDelta(now: bigint, baseline: bigint): number {
  return now > baseline ? Number(now - baseline) : 0;
}
