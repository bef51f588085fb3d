import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RequestError, SandboxError } from '../errors.ts';
import { MNT_DETACH, MS_NODEV, MS_NOSUID, mount, unmount, unmountOffThread } from '../system/libc.ts';
import { checkFiles, type SubmissionFile } from './files.ts';
import type { MountPoints } from './mount-points.ts';

/**
 * A job's working directory: a size-capped tmpfs of its own on the host, so
 * nothing a program writes ever reaches the host disk, and the compile step's
 * artifacts survive for the run steps. The compile sandbox binds it
 * read-write at /box; run sandboxes see it as the read-only lower layer of an
 * overlay, so every run starts from the same compiled state.
 *
 * Once a sandbox has touched it, its content is hostile: we never read,
 * follow, write or chown anything inside again. Release is a lazy unmount;
 * the (then empty) mount point goes back to the slot for its next job.
 */
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

export class Workspace {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly mountPoints: MountPoints,
  ) {}

  static create(opts: {
    mountPoints: MountPoints;
    sizeBytes: number;
    ownerUid: number;
    ownerGid: number;
    files: SubmissionFile[];
  }): Workspace {
    checkFiles(opts.files);
    const dir = opts.mountPoints.take();
    const workspace = new Workspace(dir, opts.mountPoints);
    try {
      // The sandbox's user owns it and no one else can read it: a local user
      // who finds the mount in /proc/self/mountinfo must not read a submission.
      mount(
        'tmpfs',
        dir,
        'tmpfs',
        MS_NOSUID | MS_NODEV,
        `size=${opts.sizeBytes},mode=${PRIVATE_DIR_MODE.toString(8)},uid=${opts.ownerUid},gid=${opts.ownerGid}`,
      );
      // The tmpfs is fresh and no sandbox has seen it yet: writing here is safe.
      for (const file of opts.files) {
        const path = join(dir, file.name);
        const parent = dirname(path);
        if (parent !== dir) {
          mkdirSync(parent, { recursive: true, mode: PRIVATE_DIR_MODE });
          chownTree(dir, parent, opts.ownerUid, opts.ownerGid);
        }
        writeFileSync(path, file.content, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
        chownSync(path, opts.ownerUid, opts.ownerGid);
      }
    } catch (cause) {
      workspace.release();
      if (cause instanceof SandboxError) throw cause;
      if ((cause as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new RequestError(
          'files_too_large',
          `the submitted files do not fit in the ${opts.sizeBytes}-byte workspace: send less, or raise limits.diskMb`,
          { field: 'files', cause },
        );
      }
      throw new SandboxError('workspace_create_failed', `cannot prepare workspace ${dir}: ${(cause as Error).message}`, { cause });
    }
    return workspace;
  }

  /** Idempotent. Never walks the tree: the unmount drops it whole. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      unmount(this.dir, MNT_DETACH);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error; // EINVAL: not mounted (creation failed early)
    }
    this.mountPoints.give(this.dir);
  }

  /** release() with the kernel's waits (see unmountOffThread) on the thread pool, off the event loop. */
  async releaseOffThread(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await unmountOffThread(this.dir, MNT_DETACH);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
    }
    this.mountPoints.give(this.dir);
  }
}

/** chown each directory from below root down to leaf (all freshly made by us). */
function chownTree(root: string, leaf: string, uid: number, gid: number): void {
  for (let dir = leaf; dir !== root && dir.startsWith(root); dir = dirname(dir)) chownSync(dir, uid, gid);
}
