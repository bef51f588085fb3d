/**
 * The one place that touches cgroupfs (as runc's cgroups/file.go is). Every
 * read, write, mkdir and rmdir of a cgroup goes through here, so error
 * messages always name the file, and symlinks planted in a cgroup tree are
 * never followed (O_NOFOLLOW). Calls are synchronous on purpose: counters are
 * read every few milliseconds, and a sync read of a tiny pseudo-file is one
 * syscall with no promise or thread-pool hop.
 */
import fs from 'node:fs';
import { HostError, SandboxError } from '../errors.ts';
import { getXattr, setXattr } from '../system/libc.ts';

const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
// O_TRUNC is a no-op on cgroupfs (runc passes it too) but makes plain files, as in a fake tree, behave.
const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW;
const READ_WRITE_FLAGS = fs.constants.O_RDWR | fs.constants.O_NOFOLLOW;
const DIR_MODE = 0o755;
const INITIAL_READ_BUFFER_BYTES = 4096;
const ANY_WRITE_BIT = 0o222;

/** errno codes that mean the host (permissions, read-only mount), not this one run, is at fault. */
const HOST_FAULT_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * The mark Brig leaves on the parent cgroups it creates: an extended
 * attribute in the trusted namespace (only root can set or read it; cgroupfs
 * keeps it). It dies with the cgroup, so a cgroup of the same name made by
 * someone else never carries it.
 */
const OWNER_XATTR = 'trusted.brig.owner';
const OWNER_VALUE = Buffer.from('brig');

/** Longest xattr value read back (systemd's flags are "1"; an invocation id is 32 hex digits). */
const MAX_XATTR_BYTES = 64;

/**
 * Operations on the tree itself, injectable because a fake cgroupfs in a temp
 * dir has no kernel to populate a new cgroup's interface files, to refuse rmdir
 * of a busy one, to move a process or to enforce v2's rules on
 * cgroup.subtree_control, and cannot hold a trusted xattr for a test that does
 * not run as root. Everything else (reading and writing interface files such
 * as memory.max or cpu.stat) runs the same code in tests.
 */
export interface CgroupDirOps {
  makeDir(path: string): void;
  removeDir(path: string): void;
  /** Leaves Brig's mark on a cgroup it created (see markCreatedByBrig). */
  mark(path: string): void;
  isMarked(path: string): boolean;
  /**
   * Writes cgroup.procs (the kernel moves a whole process, every thread of
   * it, and may refuse: ESRCH, EBUSY) or cgroup.subtree_control (the kernel
   * hands controllers to children, and refuses EBUSY or ENOENT by v2's rules).
   * Raw errors, with their errno, are thrown.
   */
  writeTreeFile(path: string, value: string): void;
  /** An extended attribute of a cgroup as text, undefined when it has none (another manager's marks, e.g. systemd's). */
  readXattr(path: string, name: string): string | undefined;
}

export const hostDirOps: CgroupDirOps = {
  makeDir: (path) => fs.mkdirSync(path, { mode: DIR_MODE }),
  removeDir: (path) => fs.rmdirSync(path),
  mark: (path) => setXattr(path, OWNER_XATTR, OWNER_VALUE),
  isMarked: (path) => getXattr(path, OWNER_XATTR, OWNER_VALUE.length + 1)?.equals(OWNER_VALUE) ?? false,
  writeTreeFile: (path, value) => writeWithoutFollowing(path, value),
  readXattr: (path, name) => {
    try {
      return getXattr(path, name, MAX_XATTR_BYTES)?.toString('utf8');
    } catch (err) {
      // Kernels before 5.7 keep no user.* xattrs on cgroupfs: nobody can have set one.
      if (errnoOf(err) === 'EOPNOTSUPP') return undefined;
      throw err;
    }
  },
};

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Permission problems are the host's; anything else failed this one operation. */
function cgroupError(code: string, message: string, cause: unknown): HostError | SandboxError {
  const errno = errnoOf(cause);
  const text = errno ? `${message} (${errno})` : message;
  if (errno && HOST_FAULT_CODES.has(errno)) {
    return new HostError(code, `${text}: run Brig as root or give it a writable, delegated cgroup tree`, { cause });
  }
  return new SandboxError(code, text, { cause });
}

function readWithoutFollowing(path: string): string {
  const fd = fs.openSync(path, READ_FLAGS);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

export function readText(path: string): string {
  try {
    return readWithoutFollowing(path);
  } catch (err) {
    throw cgroupError('cgroup_read_failed', `cannot read ${path}`, err);
  }
}

/** Like readText, but undefined when the file is gone (its cgroup was removed, possibly by someone else). */
export function readTextIfExists(path: string): string | undefined {
  try {
    return readWithoutFollowing(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw cgroupError('cgroup_read_failed', `cannot read ${path}`, err);
  }
}

function writeWithoutFollowing(path: string, value: string): void {
  const fd = fs.openSync(path, WRITE_FLAGS);
  try {
    fs.writeSync(fd, value);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeText(path: string, value: string): void {
  try {
    writeWithoutFollowing(path, value);
  } catch (err) {
    throw cgroupError('cgroup_write_failed', `cannot write "${value}" to ${path}`, err);
  }
}

/** The errno behind a failed cgroup operation (a BrigError's cause, or a raw error), e.g. to retry on EBUSY. */
export function errnoBehind(err: unknown): string | undefined {
  return errnoOf(err) ?? errnoOf((err as { cause?: unknown } | undefined)?.cause);
}

/**
 * Moves a process, with all its threads, into the cgroup at `dir`; false when
 * it exited first (ESRCH). The kernel's own errors (EBUSY: `dir` hands
 * controllers to children) are thrown with the errno in the message.
 */
export function moveProcess(ops: CgroupDirOps, dir: string, pid: number): boolean {
  const path = `${dir}/cgroup.procs`;
  try {
    ops.writeTreeFile(path, String(pid));
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ESRCH') return false;
    throw cgroupError('cgroup_move_failed', `cannot move pid ${pid} into ${path}`, err);
  }
}

/** Writes a request such as "+memory +pids" to `dir`'s cgroup.subtree_control. */
export function writeSubtreeControl(ops: CgroupDirOps, dir: string, request: string): void {
  const path = `${dir}/cgroup.subtree_control`;
  try {
    ops.writeTreeFile(path, request);
  } catch (err) {
    throw cgroupError('cgroup_write_failed', `cannot write "${request}" to ${path}`, err);
  }
}

export function readCgroupXattr(ops: CgroupDirOps, path: string, name: string): string | undefined {
  try {
    return ops.readXattr(path, name);
  } catch (err) {
    throw cgroupError('cgroup_read_failed', `cannot read the xattr ${name} of ${path}`, err);
  }
}

export function pathExists(path: string): boolean {
  try {
    fs.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when the file exists and its mode allows writing: how kernfs shows that a file has a write handler. */
export function hasWriteHandler(path: string): boolean {
  try {
    return (fs.lstatSync(path).mode & ANY_WRITE_BIT) !== 0;
  } catch {
    return false;
  }
}

export function isWritable(path: string): boolean {
  try {
    fs.accessSync(path, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function markCreatedByBrig(ops: CgroupDirOps, path: string): void {
  try {
    ops.mark(path);
  } catch (err) {
    throw cgroupError('cgroup_mark_failed', `cannot mark ${path} as Brig's (xattr ${OWNER_XATTR})`, err);
  }
}

export function isCreatedByBrig(ops: CgroupDirOps, path: string): boolean {
  try {
    return ops.isMarked(path);
  } catch (err) {
    throw cgroupError('cgroup_read_failed', `cannot read the xattr ${OWNER_XATTR} of ${path}`, err);
  }
}

/** Creates a cgroup directory; false when it already existed. */
export function makeCgroupDir(ops: CgroupDirOps, path: string): boolean {
  try {
    ops.makeDir(path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw cgroupError('cgroup_create_failed', `cannot create cgroup ${path}`, err);
  }
}

/** Removes a cgroup directory; false when it was already gone. EBUSY is thrown as code 'cgroup_busy' so callers can retry. */
export function removeCgroupDir(ops: CgroupDirOps, path: string): boolean {
  try {
    ops.removeDir(path);
    return true;
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') return false;
    if (errno === 'EBUSY')
      throw new SandboxError('cgroup_busy', `cannot remove cgroup ${path}: it still has processes or children (EBUSY)`, { cause: err });
    throw cgroupError('cgroup_remove_failed', `cannot remove cgroup ${path}`, err);
  }
}

/** Names of the child cgroups of `path`: real directories only, never symlinks, so a listing cannot lead outside the tree. */
export function listChildCgroups(path: string): string[] {
  try {
    return fs
      .readdirSync(path, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw cgroupError('cgroup_read_failed', `cannot list ${path}`, err);
  }
}

/**
 * A cgroup file kept open across reads: one pread() per read instead of
 * open+read+close, for counters polled every few milliseconds. Reading from
 * offset 0 makes kernfs (seq_file) regenerate the value each time. It also
 * carries per-fd state when the kernel keeps some (memory.peak after a write).
 */
export class OpenCgroupFile {
  readonly path: string;
  private fd: number;
  private buffer = Buffer.alloc(INITIAL_READ_BUFFER_BYTES);

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
  }

  static openForReading(path: string): OpenCgroupFile {
    try {
      return new OpenCgroupFile(path, fs.openSync(path, READ_FLAGS));
    } catch (err) {
      throw cgroupError('cgroup_read_failed', `cannot open ${path}`, err);
    }
  }

  static openForReadWrite(path: string): OpenCgroupFile {
    try {
      return new OpenCgroupFile(path, fs.openSync(path, READ_WRITE_FLAGS));
    } catch (err) {
      throw cgroupError('cgroup_write_failed', `cannot open ${path} for writing`, err);
    }
  }

  read(): string {
    try {
      // A short read means end of file, so the common case is a single syscall.
      for (;;) {
        const bytes = fs.readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
        if (bytes < this.buffer.length) return this.buffer.toString('utf8', 0, bytes);
        this.buffer = Buffer.alloc(this.buffer.length * 2);
      }
    } catch (err) {
      throw cgroupError('cgroup_read_failed', `cannot read ${this.path}`, err);
    }
  }

  write(value: string): void {
    try {
      fs.writeSync(this.fd, value, 0);
    } catch (err) {
      throw cgroupError('cgroup_write_failed', `cannot write "${value}" to ${this.path}`, err);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } finally {
      this.fd = -1;
    }
  }
}
