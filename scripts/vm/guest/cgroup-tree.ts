/**
 * A snapshot of a cgroup v2 tree, to show afterwards what Brig created or
 * wrote: every cgroup (as a path under the mount) with the files a cgroup's
 * manager sets — which controllers it hands down, its limits, its Brig mark.
 * Counters and process lists are left out: they change on their own.
 *
 * Run directly (`node --import tsx cgroup-tree.ts /sys/fs/cgroup`), it prints
 * the snapshot as JSON; test/vm/outside-untouched.test.ts compares one with
 * the tree as it is later.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getXattr } from '../../../runtime/system/libc.ts';

/** Files whose value only a cgroup's manager changes (absent ones, e.g. at the root, are left out). */
export const MANAGED_FILES = [
  'cgroup.subtree_control',
  'cgroup.type',
  'memory.max',
  'memory.swap.max',
  'memory.oom.group',
  'cpu.max',
  'pids.max',
];
const BRIG_MARK = 'trusted.brig.owner';
const MARK_BYTES = 16;

export interface CgroupState {
  /** Path under the mount: '' for the mount's own cgroup, else 'a/b'. */
  path: string;
  files: Record<string, string>;
  /** Brig's mark on the directory (runtime/cgroups/files.ts), if any. */
  brigMark: boolean;
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function hasBrigMark(dir: string): boolean {
  try {
    return getXattr(dir, BRIG_MARK, MARK_BYTES) !== null;
  } catch {
    return false;
  }
}

/** Every cgroup under `mount`, parents before children, sorted by path. */
export function snapshotCgroupTree(mount: string): CgroupState[] {
  const states: CgroupState[] = [];
  const visit = (relative: string) => {
    const dir = relative === '' ? mount : join(mount, relative);
    const files: Record<string, string> = {};
    for (const name of MANAGED_FILES) {
      const value = readIfPresent(join(dir, name));
      if (value !== undefined) files[name] = value;
    }
    states.push({ path: relative, files, brigMark: hasBrigMark(dir) });
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort();
    } catch {
      return; // removed while we looked
    }
    for (const name of entries) visit(relative === '' ? name : `${relative}/${name}`);
  };
  visit('');
  return states;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const mount = process.argv[2] ?? '/sys/fs/cgroup';
  process.stdout.write(`${JSON.stringify(snapshotCgroupTree(mount), null, 1)}\n`);
}
