/**
 * The default profile as compiled: the BPF bytes libseccomp produced, run by
 * a BPF interpreter over every interesting argument combination. The static
 * checks of default-profile.test.ts read the JSON; these read what the kernel
 * will run, so they also catch libseccomp merging or swallowing rules (a
 * shorter rule with the same prefix replaces a longer one, whatever the
 * actions) and gaps in the hand-written EAFNOSUPPORT cover of the socket rules.
 */

import assert from 'node:assert/strict';
import { constants as osConstants } from 'node:os';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileProfile, loadAndCompile } from '../../../../runtime/seccomp/compile.ts';
import { libseccomp, SCMP_ACT_ALLOW, SCMP_ACT_KILL_PROCESS, scmpActErrno } from '../../../../runtime/seccomp/libseccomp.ts';
import { validateProfile } from '../../../../runtime/seccomp/profile.ts';
import { AUDIT_ARCH, evaluateFilter } from './bpf-eval.ts';

const DEFAULT_PROFILE = fileURLToPath(new URL('../../../../profiles/seccomp/default.json', import.meta.url));
const bpf = loadAndCompile(DEFAULT_PROFILE).bpf;
const { EPERM, ENOSYS, EAFNOSUPPORT } = osConstants.errno;
const lib = libseccomp();
const nativeArch = lib.seccomp_arch_native();

const AF_UNIX = 1n;
const AF_INET = 2n;
const AF_INET6 = 10n;
const AF_NETLINK = 16n;
const SOCK_STREAM = 1n;
const SOCK_DGRAM = 2n;
const SOCK_TYPE_MASK = 0xfn;
const SOCK_NONBLOCK = 0x800n;
const SOCK_CLOEXEC = 0x80000n;
const IPPROTO_TCP = 6n;
const IPPROTO_UDP = 17n;
const NETLINK_ROUTE = 0n;
/** Beyond AF_MAX (46 in linux 6.x), with room for families to come. */
const FAMILIES_SWEPT = 64;
/** Past IPPROTO_MPTCP (262), the highest protocol number in use. */
const PROTOCOLS_SWEPT = 300;
const SCHED_RESET_ON_FORK = 0x40000000n;
const U64_MAX = (1n << 64n) - 1n;
const MISMATCHES_SHOWN = 20;
/** Values a program could pass to smuggle a small int past a 64-bit comparison, since the kernel reads only 32 bits. */
const HIGH_GARBAGE = [1n << 32n, 1n << 53n, 1n << 63n];

function nr(name: string): number {
  const number = lib.seccomp_syscall_resolve_name(name);
  assert.ok(number >= 0, `${name} has no number on this arch`);
  return number;
}

function verdict(name: string, args: bigint[] = []): number {
  return evaluateFilter(bpf, { nr: nr(name), arch: nativeArch, args });
}

function describe(action: number): string {
  if (action === SCMP_ACT_ALLOW) return 'ALLOW';
  if (action >>> 16 === 0x5) return `ERRNO(${action & 0xffff})`;
  return `0x${action.toString(16)}`;
}

function range(count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => BigInt(i));
}

/** What the socket policy says, written independently of the rules that implement it. */
function expectedSocket(family: bigint, type: bigint, protocol: bigint): number {
  const socketType = type & SOCK_TYPE_MASK;
  const inetAllowed =
    (socketType === SOCK_STREAM && (protocol === 0n || protocol === IPPROTO_TCP)) ||
    (socketType === SOCK_DGRAM && (protocol === 0n || protocol === IPPROTO_UDP));
  if (family === AF_UNIX) return SCMP_ACT_ALLOW;
  if ((family === AF_INET || family === AF_INET6) && inetAllowed) return SCMP_ACT_ALLOW;
  if (family === AF_NETLINK && protocol === NETLINK_ROUTE) return SCMP_ACT_ALLOW;
  return scmpActErrno(EAFNOSUPPORT);
}

test('the interpreter agrees with libseccomp on trivial filters', () => {
  const allowAll = compileProfile(validateProfile({ defaultAction: 'SCMP_ACT_ALLOW' }, 'inline:allow-all'));
  assert.equal(evaluateFilter(allowAll, { nr: nr('getpid'), arch: nativeArch }), SCMP_ACT_ALLOW);
  const errnoAll = compileProfile(validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 42 }, 'inline:errno'));
  assert.equal(evaluateFilter(errnoAll, { nr: nr('getpid'), arch: nativeArch }), scmpActErrno(42));
});

test('a syscall from an arch the filter does not cover kills the process', { skip: process.arch !== 'x64' && 'x86_64 only' }, () => {
  assert.equal(nativeArch, AUDIT_ARCH.x64);
  assert.equal(evaluateFilter(bpf, { nr: nr('getpid'), arch: AUDIT_ARCH.arm64 }), SCMP_ACT_KILL_PROCESS);
});

test('socket: AF_UNIX; tcp and udp over AF_INET and AF_INET6; NETLINK_ROUTE; everything else EAFNOSUPPORT', () => {
  const families = [
    ...range(FAMILIES_SWEPT),
    255n,
    0xffffffffn,
    U64_MAX,
    ...HIGH_GARBAGE.flatMap((high) => [high | AF_INET, high | AF_UNIX]),
  ];
  const types = range(Number(SOCK_TYPE_MASK) + 1).flatMap((type) => [type, type | SOCK_NONBLOCK | SOCK_CLOEXEC, type | (1n << 32n)]);
  const protocols = [
    ...range(PROTOCOLS_SWEPT),
    0xffffffffn,
    U64_MAX,
    ...HIGH_GARBAGE.flatMap((high) => [high, high | IPPROTO_TCP, high | IPPROTO_UDP]),
  ];
  const mismatches: string[] = [];
  for (const family of families) {
    for (const type of types) {
      for (const protocol of protocols) {
        const got = verdict('socket', [family, type, protocol]);
        const want = expectedSocket(family, type, protocol);
        if (got !== want)
          mismatches.push(`socket(${family}, 0x${type.toString(16)}, ${protocol}): ${describe(got)}, want ${describe(want)}`);
      }
    }
  }
  assert.deepEqual(mismatches.slice(0, MISMATCHES_SHOWN), [], `${mismatches.length} socket calls get the wrong answer`);
});

test('socketpair: AF_UNIX only; every other family EAFNOSUPPORT, whatever the type and protocol', () => {
  for (const family of [...range(FAMILIES_SWEPT), U64_MAX, ...HIGH_GARBAGE.map((high) => high | AF_UNIX)]) {
    for (const [type, protocol] of [
      [SOCK_STREAM, 0n],
      [SOCK_DGRAM | SOCK_CLOEXEC, 0n],
      [SOCK_STREAM, IPPROTO_TCP],
    ] as const) {
      const want = family === AF_UNIX ? SCMP_ACT_ALLOW : scmpActErrno(EAFNOSUPPORT);
      assert.equal(
        describe(verdict('socketpair', [family, type, protocol])),
        describe(want),
        `socketpair(${family}, ${type}, ${protocol})`,
      );
    }
  }
});

test('kernel aio fails with ENOSYS; sync, syncfs and the other host-wide calls with EPERM', () => {
  for (const name of ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents']) {
    assert.equal(describe(verdict(name, [0n, 0n])), describe(scmpActErrno(ENOSYS)), name);
  }
  const denied = [
    'sync',
    'syncfs',
    'cachestat',
    'sched_setattr',
    'mbind',
    'set_mempolicy',
    'get_mempolicy',
    'migrate_pages',
    'move_pages',
    'set_mempolicy_home_node',
    'fanotify_mark',
    'process_mrelease',
    'remap_file_pages',
    'ustat',
  ];
  for (const name of denied) assert.equal(describe(verdict(name)), describe(scmpActErrno(EPERM)), name);
  for (const name of ['fsync', 'fdatasync', 'sync_file_range']) assert.equal(describe(verdict(name)), 'ALLOW', name);
});

test('sched_setscheduler: SCHED_OTHER, SCHED_BATCH and SCHED_IDLE pass, realtime and deadline fail with EPERM', () => {
  const allowed = new Set([0n, 3n, 5n]);
  for (const policy of range(8)) {
    for (const variant of [policy, policy | SCHED_RESET_ON_FORK, policy | (1n << 32n)]) {
      const want = allowed.has(policy) ? SCMP_ACT_ALLOW : scmpActErrno(EPERM);
      assert.equal(describe(verdict('sched_setscheduler', [0n, variant, 0n])), describe(want), `policy 0x${variant.toString(16)}`);
    }
  }
});

test('clone: threads and fork pass, each namespace flag fails with EPERM', () => {
  const CLONE_THREAD_FLAGS = 0x3d0f00n; // glibc's pthread_create
  const SIGCHLD = 17n;
  assert.equal(describe(verdict('clone', [CLONE_THREAD_FLAGS])), 'ALLOW');
  assert.equal(describe(verdict('clone', [SIGCHLD])), 'ALLOW');
  for (const flag of [0x20000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
    assert.equal(describe(verdict('clone', [flag | SIGCHLD])), describe(scmpActErrno(EPERM)), `clone flag 0x${flag.toString(16)}`);
  }
});
