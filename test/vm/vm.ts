/**
 * What the test/vm files share. They run inside the VM of `npm run test:vm`
 * (scripts/vm/), on cgroup v2 with a real kernel, in the placement that
 * scripts/vm/guest/run.sh set up and names in BRIG_VM_PLACEMENT; anywhere
 * else (npm test on a v1 host) they skip. Cgroups are read straight from
 * cgroupfs, not through Brig, so a Brig bug cannot hide itself.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { V2CgroupManager } from '../../runtime/cgroups/v2/manager.ts';
import type { Runtime } from '../../runtime/runtime.ts';

export type Placement = 'root-unprepared' | 'root' | 'delegated' | 'namespace';

export const CGROUP_MOUNT = '/sys/fs/cgroup';
export const PLACEMENT = process.env.BRIG_VM_PLACEMENT as Placement | undefined;
/** The cgroup handed to Brig, as the tests see it: the mount for root and namespace, the service's cgroup for delegated. */
export const GIVEN_CGROUP = process.env.BRIG_VM_CGROUP ?? CGROUP_MOUNT;
/** For `test(name, { skip: NOT_IN_VM })`. */
export const NOT_IN_VM: string | false = PLACEMENT === undefined ? 'runs inside the cgroup v2 VM of npm run test:vm only' : false;

export const BRIG = new URL('../../bin/brig.js', import.meta.url).pathname;
export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'];

/** The V2 manager of a runtime: every test here is about v2, so anything else is a failure. */
export function v2Of(runtime: Runtime): V2CgroupManager {
  if (runtime.cgroups.version !== 2) throw new Error(`the runtime uses cgroup v${runtime.cgroups.version}, not v2`);
  return runtime.cgroups as V2CgroupManager;
}

/** The "0::/path" line of /proc/<pid>/cgroup: the cgroup as this process's cgroup namespace shows it. */
export function ownCgroupPath(pid: number | 'self' = 'self'): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('0::'));
  if (!line) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 line`);
  return line.slice('0::'.length);
}

/** Every cgroup directory under `top` (itself included), parents first. */
export function cgroupDirs(top: string = CGROUP_MOUNT): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    found.push(dir);
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
    } catch {
      return; // removed while we looked
    }
    for (const name of entries.sort()) walk(join(dir, name));
  };
  walk(top);
  return found;
}

/** Cgroups named `name` anywhere in the tree this process sees. */
export function cgroupDirsNamed(name: string): string[] {
  return cgroupDirs().filter((dir) => dir.endsWith(`/${name}`));
}

/** A cgroup as a path under the mount, '' for the mount's own. */
export function underMount(dir: string): string {
  return relative(CGROUP_MOUNT, dir);
}

export function readList(path: string): string[] {
  return readFileSync(path, 'utf8').split(/\s+/).filter(Boolean);
}

function keyedValue(text: string, key: string, what: string): number {
  const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  if (!match) throw new Error(`${what} has no ${key}`);
  return Number(match[1]);
}

/** One counter of a flat-keyed file such as memory.events or cpu.stat. */
export function readKeyed(path: string, key: string): number {
  return keyedValue(readFileSync(path, 'utf8'), key, path);
}

/**
 * A counter's growth over `body` in Brig's parent cgroup. On v2, memory.events
 * and cpu.stat are hierarchical: a parent counts its children's OOM kills and
 * CPU time, and keeps them when a child is removed. The slot's own cgroup may
 * not outlive the step: with warm slots a slot prepares its next sandbox as
 * soon as a step ends, and before 6.12 that recreates the slot's cgroup
 * (runtime/cgroups/v2/memory-peak.ts), so the directory the step ran in is
 * gone by the time its result is back. The test files here run one slot each,
 * so the parent's growth is that slot's.
 */
export async function parentGrowth(parent: string, file: string, key: string, body: () => Promise<void>): Promise<number> {
  const before = readKeyed(join(parent, file), key);
  await body();
  return readKeyed(join(parent, file), key) - before;
}

export interface CgroupSample {
  /** The cgroup directory's inode: kernfs numbers each cgroup anew, so a recreated slot has another. */
  inode: number;
  /** The step's program ran in it: a process that has exec'd. */
  programRuns: boolean;
  files: Record<string, string>;
}

const SAMPLE_MS = 10;

/**
 * A prepared sandbox waits in its slot's cgroup with two processes forked
 * from the launcher, init and the program's process, neither of which has
 * exec'd: they keep the launcher's command name until the step's program
 * starts.
 */
const LAUNCHER_COMMAND = 'brig-launcher';

/** Whether `pid` has exec'd a program of its own; false once it is gone. */
function hasExecd(pid: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== LAUNCHER_COMMAND;
  } catch {
    return false;
  }
}

function sampleCgroup(dir: string, files: readonly string[]): CgroupSample | undefined {
  try {
    const inode = statSync(dir).ino;
    const programRuns = readList(join(dir, 'cgroup.procs')).some(hasExecd);
    const read = Object.fromEntries(files.map((file) => [file, readFileSync(join(dir, file), 'utf8').trim()]));
    return { inode, programRuns, files: read };
  } catch {
    return undefined; // recreated while we looked
  }
}

export interface StepSamples {
  /** The slot's cgroup when `body` began: with warm slots, the prepared sandbox the step is about to take waits in it. */
  before: CgroupSample | undefined;
  /** Taken while the step's program ran there. */
  running: CgroupSample[];
}

/**
 * Reads `files` of a slot's cgroup every few ms while `body` runs, straight
 * from cgroupfs, and keeps the reads taken while a program ran there: the
 * limits and counters of the cgroup the step really ran in, whatever happens
 * to the slot's cgroup once the step is over.
 */
export async function sampleStep(slot: string, files: readonly string[], body: () => Promise<void>): Promise<StepSamples> {
  const before = sampleCgroup(slot, files);
  const running: CgroupSample[] = [];
  const timer = setInterval(() => {
    const sample = sampleCgroup(slot, files);
    if (sample?.programRuns) running.push(sample);
  }, SAMPLE_MS);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return { before, running };
}

/** A flat-keyed counter's growth from the step's start to the last sample taken while its program ran. */
export function stepGrowth(samples: StepSamples, file: string, key: string): number {
  const last = samples.running.at(-1);
  if (!last) throw new Error(`no sample of ${file} was taken while the program ran`);
  const value = (sample: CgroupSample) => keyedValue(sample.files[file] ?? '', key, file);
  // A cgroup recreated since `before` (a new inode) counted from zero.
  return samples.before && samples.before.inode === last.inode ? value(last) - value(samples.before) : value(last);
}

/** Every value a file had while the program ran, each once. */
export function valuesWhileRunning(samples: StepSamples, file: string): string[] {
  return [...new Set(samples.running.map((sample) => sample.files[file] ?? '(unread)'))];
}

/** The running kernel's series, e.g. [6, 1]. */
export function kernelSeries(): [number, number] {
  const [major = 0, minor = 0] = readFileSync('/proc/sys/kernel/osrelease', 'utf8')
    .split('.')
    .map((part) => Number.parseInt(part, 10));
  return [major, minor];
}
