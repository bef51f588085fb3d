/**
 * What test/probes/seccomp-surface.c must print under
 * profiles/seccomp/default.json, attempt by attempt: the one table both the
 * host-level test (test/integration/runtime/seccomp/surface.test.ts) and the
 * in-sandbox integration test (test/integration/runtime/seccomp-surface.test.ts)
 * hold the probe to. An attempt the probe prints and this table lacks is a
 * failure too, so a new probe line cannot go unasserted.
 */

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
/** The probe's sweeps: families 0..63, netlink protocols 1..31. */
const FAMILIES_SWEPT = 64;
const NETLINK_PROTOCOLS = 32;

export const OK = 'ok';
export const EPERM = 'EPERM';
export const ENOSYS = 'ENOSYS';
export const EAFNOSUPPORT = 'EAFNOSUPPORT';
/** Printed for a syscall the probe's architecture does not have. */
export const SKIPPED = 'skipped';

const ALLOWED = [
  'socket AF_UNIX SOCK_STREAM',
  'socket AF_UNIX SOCK_DGRAM',
  'socket AF_UNIX SOCK_SEQPACKET',
  ...['AF_INET', 'AF_INET6'].flatMap((family) => [
    `socket ${family} SOCK_STREAM 0`,
    `socket ${family} SOCK_STREAM IPPROTO_TCP`,
    `socket ${family} SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC 0`,
    `socket ${family} SOCK_DGRAM 0`,
    `socket ${family} SOCK_DGRAM|SOCK_CLOEXEC IPPROTO_UDP`,
  ]),
  'socket AF_NETLINK SOCK_RAW NETLINK_ROUTE',
  'socket AF_NETLINK SOCK_DGRAM NETLINK_ROUTE',
  'socketpair AF_UNIX SOCK_STREAM',
  'socketpair AF_UNIX SOCK_DGRAM',
  'socketpair AF_UNIX SOCK_SEQPACKET',
  'tcp over loopback 127.0.0.1',
  'tcp over loopback [::1]',
  'udp over loopback 127.0.0.1',
  'udp over loopback [::1]',
  'getaddrinfo localhost AI_ADDRCONFIG',
  'if_nameindex finds lo',
  'sched_setscheduler SCHED_OTHER',
  'sched_setscheduler SCHED_OTHER|SCHED_RESET_ON_FORK',
  'sched_setscheduler SCHED_BATCH',
  'sched_setscheduler SCHED_IDLE',
  'personality query',
];

const REFUSED_SOCKETS = [
  ...Array.from({ length: NETLINK_PROTOCOLS - 1 }, (_, i) => `socket AF_NETLINK protocol ${i + 1}`),
  'socket AF_INET SOCK_STREAM IPPROTO_MPTCP',
  'socket AF_INET6 SOCK_STREAM IPPROTO_MPTCP',
  'socket AF_INET SOCK_STREAM IPPROTO_SCTP',
  'socket AF_INET SOCK_SEQPACKET IPPROTO_SCTP',
  'socket AF_INET SOCK_SEQPACKET 0',
  'socket AF_INET6 SOCK_SEQPACKET 0',
  'socket AF_INET SOCK_DCCP 0',
  'socket AF_INET SOCK_DCCP IPPROTO_DCCP',
  'socket AF_INET SOCK_STREAM IPPROTO_SMC',
  'socket AF_INET SOCK_RAW 0',
  'socket AF_INET SOCK_RAW IPPROTO_ICMP',
  'socket AF_INET SOCK_RAW IPPROTO_TCP',
  'socket AF_INET6 SOCK_RAW IPPROTO_ICMPV6',
  'socket AF_INET SOCK_DGRAM IPPROTO_ICMP',
  'socket AF_INET6 SOCK_DGRAM IPPROTO_ICMPV6',
  'socket AF_INET SOCK_DGRAM IPPROTO_UDPLITE',
  'socket AF_INET SOCK_DGRAM IPPROTO_L2TP',
  'socket AF_INET SOCK_PACKET 0',
  'socket AF_INET SOCK_STREAM IPPROTO_UDP',
  'socket AF_INET with bit 32 set in the family',
  'socket AF_INET SOCK_STREAM with bit 32 set in the protocol',
  'socket AF_NETLINK with bit 32 set in the protocol',
  ...Array.from({ length: FAMILIES_SWEPT }, (_, family) => family)
    .filter((family) => ![AF_UNIX, AF_INET, AF_INET6, AF_NETLINK].includes(family))
    .flatMap((family) => [`socket family ${family}`, `socket family ${family} SOCK_DGRAM`]),
  'socketpair AF_TIPC SOCK_SEQPACKET',
  'socketpair AF_VSOCK SOCK_STREAM',
  'socketpair AF_INET SOCK_STREAM',
  'socketpair AF_INET6 SOCK_DGRAM',
  'socketpair AF_NETLINK SOCK_RAW',
  'socketpair AF_UNIX with bit 32 set in the family',
  ...Array.from({ length: FAMILIES_SWEPT }, (_, family) => family)
    .filter((family) => family !== AF_UNIX)
    .map((family) => `socketpair family ${family}`),
];

/** As on a kernel without CONFIG_AIO; clone3 so that glibc falls back to clone. */
const NOT_IMPLEMENTED = ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'clone3'];

const DENIED = [
  'sched_setscheduler SCHED_FIFO',
  'sched_setscheduler SCHED_RR',
  'sched_setscheduler SCHED_DEADLINE',
  'sched_setscheduler SCHED_FIFO with bit 32 set',
  'sched_setattr',
  'mbind',
  'set_mempolicy',
  'get_mempolicy',
  'set_mempolicy_home_node',
  'migrate_pages',
  'move_pages',
  'memfd_secret',
  'cachestat',
  'sync',
  'syncfs',
  'settimeofday',
  'clock_settime',
  'adjtimex read-only',
  'clock_adjtime',
  'sethostname',
  'setdomainname',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'reboot',
  'swapon',
  'swapoff',
  'syslog',
  'acct',
  'quotactl',
  'quotactl_fd',
  'vhangup',
  'ptrace PTRACE_GETEVENTMSG',
  'process_vm_readv self',
  'process_vm_writev self',
  'process_madvise',
  'process_mrelease',
  'pidfd_getfd',
  'kcmp',
  'unshare CLONE_NEWUSER',
  'unshare CLONE_NEWNET',
  'setns',
  'clone CLONE_NEWUSER',
  'clone CLONE_NEWNS',
  'mount',
  'umount2',
  'pivot_root',
  'chroot',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  'personality ADDR_NO_RANDOMIZE',
  'personality READ_IMPLIES_EXEC',
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'keyctl',
  'add_key',
  'request_key',
  'fanotify_init',
  'fanotify_mark',
  'name_to_handle_at',
  'open_by_handle_at',
  'remap_file_pages',
];

/** Syscalls only some architectures have; the probe prints "skipped" where they are missing. */
const ARCH_SPECIFIC_DENIED = ['lookup_dcookie', 'nfsservctl', 'modify_ldt', 'iopl', 'ioperm', 'uselib', 'ustat', 'sysfs', '_sysctl'];

/** Every attempt the probe makes → the results acceptable under the default profile. */
export function expectedSurface(arch: NodeJS.Architecture = process.arch): Map<string, readonly string[]> {
  const expected = new Map<string, readonly string[]>();
  for (const what of ALLOWED) expected.set(what, [OK]);
  for (const what of REFUSED_SOCKETS) expected.set(what, [EAFNOSUPPORT]);
  for (const what of NOT_IMPLEMENTED) expected.set(what, [ENOSYS]);
  for (const what of DENIED) expected.set(what, [EPERM]);
  for (const what of ARCH_SPECIFIC_DENIED) expected.set(what, arch === 'x64' ? [EPERM] : [EPERM, SKIPPED]);
  return expected;
}

/** The attempts the filter must refuse (every expected result is an error). */
export function refusedAttempts(expected: Map<string, readonly string[]>): string[] {
  return [...expected].filter(([, results]) => !results.includes(OK)).map(([what]) => what);
}

/** Every way `report` departs from `expected`, one line each; empty when the probe printed exactly the table. */
export function surfaceProblems(report: Map<string, string>, expected: Map<string, readonly string[]>): string[] {
  const problems: string[] = [];
  for (const [what, results] of expected) {
    const got = report.get(what);
    if (got === undefined) problems.push(`"${what}" was not reported`);
    else if (!results.includes(got)) problems.push(`"${what}" gave ${got}, expected ${results.join(' or ')}`);
  }
  for (const what of report.keys()) {
    if (!expected.has(what)) problems.push(`"${what}" is not in the expected table: add it to test/probes/seccomp-surface.expected.ts`);
  }
  return problems;
}

/** The probe's "what: result" lines → what → result. */
export function parseSurfaceReport(stdout: string): Map<string, string> {
  const report = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const at = line.indexOf(': ');
    if (at > 0) report.set(line.slice(0, at), line.slice(at + 2));
  }
  return report;
}
