import koffi from 'koffi';
import { HostError } from '../errors.ts';

/** The few libc calls Node has no API for, through koffi. Loaded on first use. */
interface Libc {
  mount(source: string, target: string, fstype: string, flags: number, data: string | null): number;
  umount2: ((target: string, flags: number) => number) & {
    /** koffi: the same call on libuv's thread pool. */
    async(target: string, flags: number, done: (error: unknown, rc: number) => void): void;
  };
  flock(fd: number, operation: number): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer, size: number): number;
  syscall(number: number, ...typedArgs: unknown[]): number | bigint;
}

export const MNT_DETACH = 2;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;

let libc: Libc | undefined;

let library: ReturnType<typeof koffi.load> | undefined;

/** The C library through koffi, loaded once for every module that needs a libc call. */
export function libcLibrary(): ReturnType<typeof koffi.load> {
  try {
    library ??= koffi.load('libc.so.6');
    return library;
  } catch (cause) {
    throw new HostError('libc_unavailable', 'cannot load libc.so.6 through koffi: Brig needs glibc', { cause });
  }
}

function load(): Libc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    flock: lib.func('int flock(int fd, int operation)'),
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    lgetxattr: lib.func('long lgetxattr(const char *path, const char *name, void *value, size_t size)'),
    syscall: lib.func('long syscall(long number, ...)'),
  };
  return libc;
}

/** Throws with the errno the kernel gave; returns normally on success. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  if (load().mount(source, target, fstype, flags, data) !== 0) {
    throw errnoError('mount', target, koffi.errno());
  }
}

export function unmount(target: string, flags: number): void {
  if (load().umount2(target, flags) !== 0) {
    throw errnoError('umount2', target, koffi.errno());
  }
}

/**
 * umount2 on libuv's thread pool. Why: an unmount ends in the kernel waiting
 * for an RCU grace period (namespace_unlock), measured here at 0.4–1.1 ms of
 * waiting for 0.04 ms of CPU; on the event loop that wait would hold up every
 * other run. koffi does not bring errno back from its worker thread, so a
 * failure is asked again here, on this thread, to learn why.
 */
export function unmountOffThread(target: string, flags: number): Promise<void> {
  return new Promise((resolve, reject) => {
    load().umount2.async(target, flags, (error: unknown, rc: number) => {
      if (error) return reject(error);
      if (rc === 0) return resolve();
      try {
        unmount(target, flags);
        resolve();
      } catch (again) {
        reject(again);
      }
    });
  });
}

/** Sets an extended attribute of path itself (a symlink is not followed). */
export function setXattr(path: string, name: string, value: Buffer): void {
  if (load().lsetxattr(path, name, value, value.length, 0) !== 0) throw errnoError('lsetxattr', path, koffi.errno());
}

const SYS_OPEN_TREE = 428;
const AT_FDCWD = -100;
const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const AT_SYMLINK_NOFOLLOW = 0x100;

/**
 * open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path`
 * (a path Brig made; its last component is not followed if a symlink), as
 * an fd another mount namespace can move into place. Kernel ≥ 5.2.
 */
export function openTreeClone(path: string): number {
  const fd = Number(
    load().syscall(SYS_OPEN_TREE, 'int', AT_FDCWD, 'str', path, 'uint', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW),
  );
  if (fd < 0) throw errnoError('open_tree', path, koffi.errno());
  return fd;
}

/** An extended attribute of path itself, or null when it has none of that name (ENODATA). */
export function getXattr(path: string, name: string, maxBytes: number): Buffer | null {
  const buffer = Buffer.alloc(maxBytes);
  const length = Number(load().lgetxattr(path, name, buffer, maxBytes));
  if (length >= 0) return buffer.subarray(0, length);
  const errno = koffi.errno();
  if (errno === ENODATA) return null;
  throw errnoError('lgetxattr', path, errno);
}

const ENODATA = 61;

export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** Takes an exclusive lock without waiting; false when another process holds it. The kernel drops it when the holder dies. */
export function tryLockExclusive(fd: number, path: string): boolean {
  if (load().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = koffi.errno();
  if (errno === EWOULDBLOCK) return false;
  throw errnoError('flock', path, errno);
}

const EWOULDBLOCK = 11;

/** Error shaped like Node's own fs errors, so callers can test `.code`. */
function errnoError(call: string, path: string, errno: number): NodeJS.ErrnoException {
  const name = ERRNO_NAMES[errno] ?? `E${errno}`;
  const error: NodeJS.ErrnoException = new Error(`${call} ${path}: ${name}`);
  error.code = name;
  error.errno = errno;
  error.syscall = call;
  error.path = path;
  return error;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  13: 'EACCES',
  16: 'EBUSY',
  19: 'ENODEV',
  20: 'ENOTDIR',
  22: 'EINVAL',
  34: 'ERANGE',
  61: 'ENODATA',
  95: 'EOPNOTSUPP',
};
