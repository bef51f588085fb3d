import { randomUUID } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.ts';

const MOUNT_POINT_MODE = 0o700;

/**
 * A slot's mount points for its jobs' workspaces, reused. A released
 * workspace's directory, once its tmpfs is unmounted, is again the empty
 * directory made here (nothing a sandbox touched was ever in it: the tmpfs
 * covered it), and the slot's next job mounts its own tmpfs on it. The
 * runs folder lives on the state dir's disk, where an ext4 mkdir and rmdir
 * per job took 160 and 278 µs after an idle pause (22 and 70 µs back to
 * back), the mkdir on the request's path. A directory whose unmount failed
 * is never given back; the slot's next start sweeps it.
 */
export class MountPoints {
  private readonly free: string[] = [];
  /** The runs folder's device: a directory on another one is still a mount point. */
  private readonly runsDev: number;

  /** The slot's runs folder, where they are. */
  constructor(readonly runsDir: string) {
    this.runsDev = lstatSync(runsDir).dev;
  }

  /** An empty, unmounted directory: one given back, else a new one. */
  take(): string {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const dir = join(this.runsDir, randomUUID());
    try {
      mkdirSync(dir, { mode: MOUNT_POINT_MODE });
    } catch (cause) {
      throw new SandboxError('workspace_create_failed', `cannot create workspace mount point ${dir}`, { cause });
    }
    return dir;
  }

  /**
   * Once the workspace mounted on it is unmounted. A directory that is
   * still a mount point (something else was mounted under the workspace) is
   * not taken back: it stays as it is, for the slot's next start to sweep.
   */
  give(dir: string): void {
    if (lstatSync(dir).dev === this.runsDev) this.free.push(dir);
  }
}
