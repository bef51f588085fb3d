/**
 * A snapshot of a cgroup v2 tree, to show afterwards what Brig created or
 * wrote: every cgroup (as a path under the mount) with the files a cgroup's
 * manager sets — which controllers it hands down, its limits, its Brig mark.
 * Counters and process lists are left out: they change on their own.
 *
 * `node cgroup-tree.mjs /sys/fs/cgroup` prints the snapshot as JSON: run.sh
 * takes one before each placement, test/vm/outside-untouched.test.ts one
 * after. Plain JavaScript without tsx, and koffi alone for the xattr: each
 * Node process that loads tsx costs seconds in the emulated guest.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';

/** Files whose value only a cgroup's manager changes (absent ones, e.g. at the root, are left out). */
const MANAGED_FILES = ['cgroup.subtree_control', 'cgroup.type', 'memory.max', 'memory.swap.max', 'memory.oom.group', 'cpu.max', 'pids.max'];
/** Brig's mark on the cgroups it makes (runtime/cgroups/files.ts). */
const BRIG_MARK = 'trusted.brig.owner';
const MARK_BYTES = 16;

const lgetxattr = koffi.load('libc.so.6').func('long lgetxattr(const char *path, const char *name, void *value, size_t size)');

function readIfPresent(path) {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether the directory carries Brig's mark (any error, ENODATA among them, reads as no). */
function hasBrigMark(dir) {
  return Number(lgetxattr(dir, BRIG_MARK, Buffer.alloc(MARK_BYTES), MARK_BYTES)) >= 0;
}

/**
 * Every cgroup under `mount`, parents before children, sorted by path: each
 * `{ path, files, brigMark }`, path '' for the mount's own cgroup, else 'a/b'.
 */
function snapshotCgroupTree(mount) {
  const states = [];
  const visit = (relative) => {
    const dir = relative === '' ? mount : join(mount, relative);
    const files = {};
    for (const name of MANAGED_FILES) {
      const value = readIfPresent(join(dir, name));
      if (value !== undefined) files[name] = value;
    }
    states.push({ path: relative, files, brigMark: hasBrigMark(dir) });
    let entries;
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

process.stdout.write(`${JSON.stringify(snapshotCgroupTree(process.argv[2] ?? '/sys/fs/cgroup'), null, 1)}\n`);
