/**
 * A unix socket pair and a send that carries a file descriptor with it
 * (SCM_RIGHTS), through koffi: Node's own sockets cannot pass descriptors,
 * except on its IPC channel. Used for the go message, which carries the
 * workspace to the sandbox's init as a detached mount (see
 * runtime/launcher/protocol.h).
 *
 * The socket is blocking: the only reader is a process that is already
 * waiting for the message, and a message is at most 2 MiB.
 */
import koffi from 'koffi';
import { SandboxError } from '../errors.ts';
import { libcLibrary } from './libc.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EPIPE = 32;
const ECONNRESET = 104;
/** struct cmsghdr (x86_64 and arm64): size_t cmsg_len, int cmsg_level, int cmsg_type, then the data, 8-byte aligned. */
const CMSG_HEADER_BYTES = 16;
const FD_BYTES = 4;
const CMSG_SPACE_ONE_FD = 24;

interface SocketLibc {
  socketpair(domain: number, type: number, protocol: number, fds: number[]): number;
  sendmsg(fd: number, msg: object, flags: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
}

let libc: SocketLibc | undefined;

function load(): SocketLibc {
  if (libc) return libc;
  const lib = libcLibrary();
  const iovec = koffi.struct('brig_iovec', { base: 'void *', len: 'size_t' });
  koffi.struct('brig_msghdr', {
    name: 'void *',
    namelen: 'uint32_t',
    iov: koffi.pointer(iovec),
    iovlen: 'size_t',
    control: 'void *',
    controllen: 'size_t',
    flags: 'int',
  });
  libc = {
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)') as unknown as SocketLibc['socketpair'],
    sendmsg: lib.func('long sendmsg(int fd, const brig_msghdr *msg, int flags)') as unknown as SocketLibc['sendmsg'],
    send: lib.func('long send(int fd, const void *buf, size_t len, int flags)') as unknown as SocketLibc['send'],
  };
  return libc;
}

/** A connected pair of unix stream sockets, both close-on-exec. */
export function socketPair(): [number, number] {
  const fds = [0, 0];
  if (load().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0)
    throw new SandboxError('spawn_failed', `socketpair failed (errno ${koffi.errno()})`);
  return [fds[0]!, fds[1]!];
}

/**
 * Sends `payload` on `socket` with `fd` attached to its first byte. False
 * when the reader is gone (EPIPE, ECONNRESET): the caller learns why from
 * the reader's own report, not from us.
 */
export function sendWithFd(socket: number, payload: Buffer, fd: number): boolean {
  const c = load();
  const control = Buffer.alloc(CMSG_SPACE_ONE_FD);
  control.writeBigUInt64LE(BigInt(CMSG_HEADER_BYTES + FD_BYTES), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  control.writeInt32LE(fd, CMSG_HEADER_BYTES);
  let sent = -1;
  while (sent < 0) {
    const msg = {
      name: null,
      namelen: 0,
      iov: { base: payload, len: payload.length },
      iovlen: 1,
      control,
      controllen: control.length,
      flags: 0,
    };
    sent = Number(c.sendmsg(socket, msg, MSG_NOSIGNAL));
    if (sent < 0 && !retry(koffi.errno(), 'sendmsg')) return false;
  }
  while (sent < payload.length) {
    const rest = payload.subarray(sent);
    const n = Number(c.send(socket, rest, rest.length, MSG_NOSIGNAL));
    if (n < 0) {
      if (!retry(koffi.errno(), 'send')) return false;
      continue;
    }
    sent += n;
  }
  return true;
}

/** True to try again (EINTR), false when the reader is gone; throws for anything else. */
function retry(errno: number, call: string): boolean {
  if (errno === EINTR) return true;
  if (errno === EPIPE || errno === ECONNRESET) return false;
  throw new SandboxError('go_failed', `${call} of the go message failed (errno ${errno})`);
}
