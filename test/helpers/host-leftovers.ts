/**
 * What a test's Brig processes may leave on the machine: cgroup directories
 * under a parent name of the test's, and mounts under its folders. Found
 * wherever they are (a parent at the top of a hierarchy, or inside the
 * cgroup Brig runs in), and removed only when they carry the test's names.
 */
import { execFileSync } from 'node:child_process';
import { type Dirent, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Deep enough for a parent inside a delegated cgroup (a service's, a container's) and its slots. */
const MAX_CGROUP_DEPTH = 6;
const RMDIR_ATTEMPTS = 20;
const RMDIR_RETRY_MS = 100;

interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** /proc/self/mountinfo: field 5 is the mount point (octal escapes for spaces), the type follows the " - ". */
function mounts(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(' - ');
      const mountPoint = left!
        .split(' ')[4]!
        .replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
      return { mountPoint, fsType: right!.split(' ')[0]! };
    });
}

/** Mount points at or under `dir`. */
export function mountsUnder(dir: string): string[] {
  return mounts()
    .map((m) => m.mountPoint)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Lazily unmounts everything at or under `dir`, deepest first. */
export function unmountUnder(dir: string): void {
  for (const point of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' });
    } catch {
      // already gone with its parent mount
    }
  }
}

/** Directories named by `matches` in every cgroup hierarchy (v1 and v2), at any depth up to MAX_CGROUP_DEPTH. */
export function findCgroupDirs(matches: (name: string) => boolean): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > MAX_CGROUP_DEPTH) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (matches(entry.name)) found.push(path);
      else walk(path, depth + 1);
    }
  };
  for (const m of mounts()) if (m.fsType === 'cgroup' || m.fsType === 'cgroup2') walk(m.mountPoint, 0);
  return [...new Set(found)];
}

/** Every directory under `dir`, children before parents. */
function subtree(dir: string): string[] {
  const below = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => subtree(join(dir, e.name)));
  return [...below, dir];
}

/**
 * Kills what still runs in each cgroup of `dirs` (processes of the test's
 * own Brig processes: sandboxes a killed worker left) and removes them,
 * children first. For a test's after(): the dirs must be ones its Brig
 * processes made.
 */
export async function removeCgroupDirs(dirs: string[]): Promise<void> {
  for (const top of dirs) {
    let tree: string[];
    try {
      tree = subtree(top);
    } catch {
      continue;
    }
    for (const dir of tree) {
      for (let attempt = 0; attempt < RMDIR_ATTEMPTS; attempt++) {
        try {
          for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            try {
              process.kill(Number(pid), 'SIGKILL');
            } catch {
              // exited meanwhile
            }
          }
          rmdirSync(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
          await sleep(RMDIR_RETRY_MS);
        }
      }
    }
  }
}
