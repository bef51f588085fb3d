import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import koffi from 'koffi';
import { SandboxError } from '../errors.ts';
import { socketPair } from './fd-passing.ts';
import { libcLibrary } from './libc.ts';

/**
 * Starts a process with posix_spawn(3) instead of child_process.spawn.
 *
 * Why: libuv spawns with fork(), which copies the page tables of the whole
 * Node process before exec; measured here, that is ~1.9 ms per spawn against
 * ~0.4 ms for glibc's posix_spawn (clone with CLONE_VM|CLONE_VFORK). A sandbox
 * run spawns one launcher, so this is most of the difference between Brig and
 * the bare namespace floor.
 *
 * The child gets exactly the fds it is given (each mapped to a target
 * number), default signal dispositions, an empty signal mask, an empty
 * environment and a process group of its own: a terminal's Ctrl-C (SIGINT to
 * the whole foreground group) or a signal to Brig's group reaches Brig alone,
 * which then drains its runs, instead of killing every sandbox at once.
 * libuv does not know this child, so we reap it ourselves with waitpid once
 * the caller says it has gone (its status pipe hit EOF).
 */

const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETPGROUP = 0x02;
/** setpgid(0, 0) in the child: a new group whose id is the child's pid. */
const NEW_PROCESS_GROUP = 0;
/** Opaque glibc structs, sized with room to spare (x86_64: 80, 336 and 128 bytes). */
const FILE_ACTIONS_BYTES = 256;
const SPAWNATTR_BYTES = 1024;
const SIGSET_BYTES = 256;
/** Child-side fd numbers below this could be clobbered by an earlier dup2; sources are moved above it. */
const SAFE_FD_FLOOR = 16;
const REAP_RETRY_MS = 1;
const REAP_MAX_TRIES = 5000;

interface Libc {
  pipe2(fds: number[], flags: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  posix_spawn: {
    /** koffi: the call on libuv's thread pool. */
    async(
      pid: number[],
      path: string,
      actions: Buffer,
      attr: Buffer,
      argv: (string | null)[],
      envp: (string | null)[],
      done: (error: unknown, rc: number) => void,
    ): void;
  };
  posix_spawn_file_actions_init(actions: Buffer): number;
  posix_spawn_file_actions_adddup2(actions: Buffer, fd: number, target: number): number;
  posix_spawn_file_actions_destroy(actions: Buffer): number;
  posix_spawnattr_init(attr: Buffer): number;
  posix_spawnattr_setflags(attr: Buffer, flags: number): number;
  posix_spawnattr_setsigmask(attr: Buffer, set: Buffer): number;
  posix_spawnattr_setsigdefault(attr: Buffer, set: Buffer): number;
  posix_spawnattr_setpgroup(attr: Buffer, pgroup: number): number;
  posix_spawnattr_destroy(attr: Buffer): number;
  sigemptyset(set: Buffer): number;
  sigfillset(set: Buffer): number;
  waitpid(pid: number, status: number[], options: number): number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as unknown as Libc['pipe2'],
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    posix_spawn: lib.func(
      'int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)',
    ),
    posix_spawn_file_actions_init: lib.func('int posix_spawn_file_actions_init(void *actions)'),
    posix_spawn_file_actions_adddup2: lib.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int target)'),
    posix_spawn_file_actions_destroy: lib.func('int posix_spawn_file_actions_destroy(void *actions)'),
    posix_spawnattr_init: lib.func('int posix_spawnattr_init(void *attr)'),
    posix_spawnattr_setflags: lib.func('int posix_spawnattr_setflags(void *attr, short flags)'),
    posix_spawnattr_setsigmask: lib.func('int posix_spawnattr_setsigmask(void *attr, void *set)'),
    posix_spawnattr_setsigdefault: lib.func('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
    posix_spawnattr_setpgroup: lib.func('int posix_spawnattr_setpgroup(void *attr, int pgroup)'),
    posix_spawnattr_destroy: lib.func('int posix_spawnattr_destroy(void *attr)'),
    sigemptyset: lib.func('int sigemptyset(void *set)'),
    sigfillset: lib.func('int sigfillset(void *set)'),
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
  };
  return libc;
}

/**
 * A pipe end the child gets ('in': the child reads, 'out': the child writes),
 * one end of a unix socket pair ('socket': ours stays a raw fd, for
 * fd-passing.ts), or an fd of ours to share.
 */
export type ChildFd = 'in' | 'out' | 'socket' | { shared: number };

export interface SpawnedProcess {
  pid: number;
  /** Our ends of the pipes, by child fd number: Writable for 'in', Readable for 'out'. */
  streams: Map<number, Socket>;
  /** Our ends of the 'socket' pairs, by child fd number: ours to close. */
  sockets: Map<number, number>;
  kill(signal: NodeJS.Signals): void;
  /** Reaps the child (call once it is known to be exiting); resolves with how it ended. */
  reap(): Promise<{ code: number | null; signal: number | null }>;
}

/**
 * posix_spawn runs on libuv's thread pool: the calling thread stays blocked
 * until the child has reset its signals, set up its fds and exec'd (~0.4 ms
 * here, more under load), and on the event loop that would hold up every
 * other run and request of the process. Every fd Brig opens is close-on-exec,
 * so a spawn on another thread can pass on only the fds it is given.
 */
export async function spawnProcess(path: string, argv: string[], fds: ChildFd[]): Promise<SpawnedProcess> {
  const c = load();
  const ours: number[] = [];
  const theirs: number[] = [];
  const streams = new Map<number, Socket>();
  const sockets = new Map<number, number>();
  const actions = Buffer.alloc(FILE_ACTIONS_BYTES);
  const attr = Buffer.alloc(SPAWNATTR_BYTES);
  try {
    check(c.posix_spawn_file_actions_init(actions), 'posix_spawn_file_actions_init');
    check(c.posix_spawnattr_init(attr), 'posix_spawnattr_init');
    const none = Buffer.alloc(SIGSET_BYTES);
    const all = Buffer.alloc(SIGSET_BYTES);
    c.sigemptyset(none);
    c.sigfillset(all);
    check(c.posix_spawnattr_setsigmask(attr, none), 'posix_spawnattr_setsigmask');
    // Node ignores SIGPIPE; the child must not inherit that (nor any handler state).
    check(c.posix_spawnattr_setsigdefault(attr, all), 'posix_spawnattr_setsigdefault');
    check(c.posix_spawnattr_setpgroup(attr, NEW_PROCESS_GROUP), 'posix_spawnattr_setpgroup');
    check(
      c.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP),
      'posix_spawnattr_setflags',
    );

    const sources: number[] = [];
    fds.forEach((spec, target) => {
      if (typeof spec === 'object') {
        sources.push(aboveFloor(c, spec.shared, theirs));
        return;
      }
      if (spec === 'socket') {
        const [mine, child] = socketPair();
        sockets.set(target, mine);
        theirs.push(child);
        sources.push(aboveFloor(c, child, theirs));
        return;
      }
      const pair = [0, 0];
      if (c.pipe2(pair, O_CLOEXEC) !== 0) throw new SandboxError('spawn_failed', `pipe2 failed (errno ${koffi.errno()})`);
      const [readEnd, writeEnd] = pair as [number, number];
      const [mine, child] = spec === 'in' ? [writeEnd, readEnd] : [readEnd, writeEnd];
      ours.push(mine);
      theirs.push(child);
      sources.push(aboveFloor(c, child, theirs));
      streams.set(target, new Socket({ fd: mine, readable: spec === 'out', writable: spec === 'in' }));
    });
    for (const [target, source] of sources.entries())
      check(c.posix_spawn_file_actions_adddup2(actions, source, target), 'posix_spawn_file_actions_adddup2');

    const pid = [0];
    const rc = await new Promise<number>((resolve, reject) =>
      c.posix_spawn.async(pid, path, actions, attr, [...argv.map(String), null], [null], (error, rc) =>
        error ? reject(error) : resolve(rc),
      ),
    );
    if (rc !== 0) throw new SandboxError('spawn_failed', `cannot start ${path}: errno ${rc}`);
    return makeProcess(c, pid[0]!, streams, sockets);
  } catch (error) {
    for (const stream of streams.values()) stream.destroy();
    for (const fd of sockets.values()) closeSync(fd);
    throw error;
  } finally {
    for (const fd of new Set(theirs)) closeSync(fd);
    c.posix_spawn_file_actions_destroy(actions);
    c.posix_spawnattr_destroy(attr);
  }
}

/** A copy of fd numbered at least SAFE_FD_FLOOR (recorded in `owned` to be closed after the spawn). */
function aboveFloor(c: Libc, fd: number, owned: number[]): number {
  if (fd >= SAFE_FD_FLOOR) return fd;
  const copy = c.fcntl(fd, F_DUPFD_CLOEXEC, SAFE_FD_FLOOR);
  if (copy < 0) throw new SandboxError('spawn_failed', `fcntl(F_DUPFD_CLOEXEC) failed (errno ${koffi.errno()})`);
  owned.push(copy);
  return copy;
}

function makeProcess(c: Libc, pid: number, streams: Map<number, Socket>, sockets: Map<number, number>): SpawnedProcess {
  let ended: Promise<{ code: number | null; signal: number | null }> | undefined;
  let reaped = false;
  return {
    pid,
    streams,
    sockets,
    kill(signal) {
      if (reaped) return; // the pid may belong to someone else by now
      try {
        process.kill(pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    },
    reap() {
      ended ??= (async () => {
        const status = [0];
        for (let tries = 0; tries < REAP_MAX_TRIES; tries++) {
          const rc = c.waitpid(pid, status, WNOHANG);
          if (rc === pid) {
            reaped = true;
            const s = status[0]!;
            const signal = s & 0x7f;
            return signal === 0 ? { code: (s >> 8) & 0xff, signal: null } : { code: null, signal };
          }
          if (rc < 0) throw new SandboxError('spawn_failed', `waitpid(${pid}) failed (errno ${koffi.errno()})`);
          await new Promise((resolve) => setTimeout(resolve, tries === 0 ? 0 : REAP_RETRY_MS));
        }
        throw new SandboxError('launcher_stuck', `launcher ${pid} did not exit`);
      })();
      return ended;
    },
  };
}

function check(rc: number, call: string): void {
  if (rc !== 0) throw new SandboxError('spawn_failed', `${call} failed (errno ${rc})`);
}

export type { Readable, Writable };
