/**
 * What a `brig serve` under load holds, and what it may leave behind, read
 * straight from /proc and /sys/fs/cgroup rather than asked of the server, so
 * that a bug in the server cannot hide itself. Reads only: nothing here
 * writes to /proc or to a cgroup.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
const BYTES_PER_KB = 1024;
/** proc(5): the fifth field of a mountinfo line is the mount point. */
const MOUNT_POINT_FIELD = 4;
/** mountinfo writes space, tab, newline and backslash in a path as \ooo. */
const OCTAL_ESCAPE = /\\([0-7]{3})/g;
const OCTAL_RADIX = 8;

/** Resident memory of a process, from VmRSS in /proc/<pid>/status (which counts in kB); 0 when it has none (a zombie). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * BYTES_PER_KB : 0;
}

/** How many file descriptors a process has open. */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Mount points at dir or below it, in this process's mount namespace. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) =>
      (line.split(' ')[MOUNT_POINT_FIELD] ?? '').replace(OCTAL_ESCAPE, (_, octal: string) =>
        String.fromCharCode(parseInt(octal, OCTAL_RADIX)),
      ),
    )
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** The parent's cgroup folders and every folder below them, in every hierarchy. */
export function cgroupFolders(parent: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    found.push(dir);
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
  };
  for (const hierarchy of readdirSync(CGROUP_ROOT)) {
    const dir = join(CGROUP_ROOT, hierarchy, parent);
    if (existsSync(dir)) walk(dir);
  }
  return found;
}

/** Processes other than this one whose command line names dir (for a state dir: redis-server, launchers), as "<pid> <command line>". */
export function processesNaming(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (cmdline.includes(dir)) found.push(`${entry} ${cmdline}`);
    } catch {
      // gone while we looked
    }
  }
  return found;
}
