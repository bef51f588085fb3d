/*
 * seccomp-surface: from inside a sandbox, tries every socket the seccomp
 * filter must refuse or allow and every syscall its deny list names, and
 * prints one "what: result" line per attempt, where result is "ok" or the
 * errno name the attempt failed with ("signal N" if it was killed,
 * "skipped" for a syscall this architecture does not have). It never
 * decides what is acceptable: test/integration/runtime/seccomp-surface.test.ts
 * does, from these lines.
 *
 * Every attempt runs in its own forked child, so a call the filter wrongly
 * let through (unshare, personality, a realtime policy) cannot change the
 * next attempt. Where the kernel would answer with its own error, the
 * arguments are chosen so that answer is not the filter's (EBADF for fd -1,
 * EINVAL for a bad mode or a missing struct, ENOENT for a missing path):
 * then EPERM, ENOSYS or EAFNOSUPPORT can only come from the filter. Calls
 * the kernel checks for a capability first answer EPERM either way; the
 * unit test enforce.test.ts probes those as host root, where only the
 * filter can refuse them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Numbers newer than the headers of Debian 12 (linux 6.1). */
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

#define FAMILIES_SWEPT 64
#define NETLINK_PROTOCOLS 32 /* MAX_LINKS */
#define AF_NETLINK_FAMILY 16
#define AF_TIPC_FAMILY 30
#define AF_VSOCK_FAMILY 40
#define IPPROTO_MPTCP_PROTOCOL 262
#define IPPROTO_SMC_PROTOCOL 256
#define IPPROTO_L2TP_PROTOCOL 115
#define SOCK_DCCP_TYPE 6
#define SOCK_PACKET_TYPE 10
#define SCHED_DEADLINE_POLICY 6
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEY_SPEC_PROCESS_KEYRING (-2)
#define HIGH_BITS (1UL << 32)
#define KEXEC_UNKNOWN_FLAG 0x8000
#define INVALID_MODE 99
#define INVALID_CLOCK 12345
#define MISSING_PATH "/nonexistent-brig-probe/dir"
#define EXIT_OK 0
#define EXIT_UNKNOWN 255

typedef long (*attempt_fn)(void);

/* Arguments for the generic attempts below; set before the fork, read by the child. */
static long sys_nr;
static long sys_args[6];

static long result_of(long rc) { return rc < 0 ? -errno : rc; }

static const char *errname(int err)
{
	const char *name = strerrorname_np(err);
	return name ? name : "E?";
}

/* Runs fn in a child and prints "what: result". */
static void attempt(attempt_fn fn, const char *fmt, ...)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		long rc = fn();
		_exit(rc >= 0 ? EXIT_OK : (-rc > 0 && -rc < EXIT_UNKNOWN ? (int)-rc : EXIT_UNKNOWN));
	}
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	int status;
	if (pid < 0) {
		printf(": fork failed %s\n", errname(errno));
	} else if (waitpid(pid, &status, 0) < 0) {
		printf(": wait failed %s\n", errname(errno));
	} else if (WIFSIGNALED(status)) {
		printf(": signal %d\n", WTERMSIG(status));
	} else if (WEXITSTATUS(status) == EXIT_OK) {
		printf(": ok\n");
	} else {
		printf(": %s\n", errname(WEXITSTATUS(status)));
	}
}

static long raw_syscall(void)
{
	return result_of(syscall(sys_nr, sys_args[0], sys_args[1], sys_args[2], sys_args[3], sys_args[4], sys_args[5]));
}

/* One raw syscall with up to six arguments, in a child. */
#define TRY(label, nr, ...)                                                 \
	do {                                                                \
		long args_[6] = { __VA_ARGS__ };                            \
		sys_nr = (nr);                                              \
		memcpy(sys_args, args_, sizeof sys_args);                   \
		attempt(raw_syscall, "%s", label);                          \
	} while (0)

#define SKIP(label) printf("%s: skipped\n", label)

/* ---- sockets ----------------------------------------------------------- */

static void socket_try(long family, long type, long protocol, const char *label)
{
	TRY(label, SYS_socket, family, type, protocol);
}

static void sockets_allowed(void)
{
	socket_try(AF_UNIX, SOCK_STREAM, 0, "socket AF_UNIX SOCK_STREAM");
	socket_try(AF_UNIX, SOCK_DGRAM, 0, "socket AF_UNIX SOCK_DGRAM");
	socket_try(AF_UNIX, SOCK_SEQPACKET, 0, "socket AF_UNIX SOCK_SEQPACKET");
	static const struct { int family; const char *name; } inet[] = { { AF_INET, "AF_INET" }, { AF_INET6, "AF_INET6" } };
	for (size_t i = 0; i < sizeof inet / sizeof inet[0]; i++) {
		char label[128];
		snprintf(label, sizeof label, "socket %s SOCK_STREAM 0", inet[i].name);
		socket_try(inet[i].family, SOCK_STREAM, 0, label);
		snprintf(label, sizeof label, "socket %s SOCK_STREAM IPPROTO_TCP", inet[i].name);
		socket_try(inet[i].family, SOCK_STREAM, IPPROTO_TCP, label);
		snprintf(label, sizeof label, "socket %s SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC 0", inet[i].name);
		socket_try(inet[i].family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, label);
		snprintf(label, sizeof label, "socket %s SOCK_DGRAM 0", inet[i].name);
		socket_try(inet[i].family, SOCK_DGRAM, 0, label);
		snprintf(label, sizeof label, "socket %s SOCK_DGRAM|SOCK_CLOEXEC IPPROTO_UDP", inet[i].name);
		socket_try(inet[i].family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP, label);
	}
	socket_try(AF_NETLINK_FAMILY, SOCK_RAW, 0, "socket AF_NETLINK SOCK_RAW NETLINK_ROUTE");
	socket_try(AF_NETLINK_FAMILY, SOCK_DGRAM | SOCK_CLOEXEC, 0, "socket AF_NETLINK SOCK_DGRAM NETLINK_ROUTE");
	TRY("socketpair AF_UNIX SOCK_STREAM", SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, (long)(int[2]){ 0 });
	TRY("socketpair AF_UNIX SOCK_DGRAM", SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, (long)(int[2]){ 0 });
	TRY("socketpair AF_UNIX SOCK_SEQPACKET", SYS_socketpair, AF_UNIX, SOCK_SEQPACKET, 0, (long)(int[2]){ 0 });
}

static void sockets_refused(void)
{
	for (int protocol = 1; protocol < NETLINK_PROTOCOLS; protocol++) {
		char label[64];
		snprintf(label, sizeof label, "socket AF_NETLINK protocol %d", protocol);
		socket_try(AF_NETLINK_FAMILY, SOCK_RAW, protocol, label);
	}
	socket_try(AF_INET, SOCK_STREAM, IPPROTO_MPTCP_PROTOCOL, "socket AF_INET SOCK_STREAM IPPROTO_MPTCP");
	socket_try(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP_PROTOCOL, "socket AF_INET6 SOCK_STREAM IPPROTO_MPTCP");
	socket_try(AF_INET, SOCK_STREAM, IPPROTO_SCTP, "socket AF_INET SOCK_STREAM IPPROTO_SCTP");
	socket_try(AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, "socket AF_INET SOCK_SEQPACKET IPPROTO_SCTP");
	/* Protocol 0 means "whatever is registered for the type": SCTP and DCCP, if their modules are loaded. */
	socket_try(AF_INET, SOCK_SEQPACKET, 0, "socket AF_INET SOCK_SEQPACKET 0");
	socket_try(AF_INET6, SOCK_SEQPACKET, 0, "socket AF_INET6 SOCK_SEQPACKET 0");
	socket_try(AF_INET, SOCK_DCCP_TYPE, 0, "socket AF_INET SOCK_DCCP 0");
	socket_try(AF_INET, SOCK_DCCP_TYPE, IPPROTO_DCCP, "socket AF_INET SOCK_DCCP IPPROTO_DCCP");
	socket_try(AF_INET, SOCK_STREAM, IPPROTO_SMC_PROTOCOL, "socket AF_INET SOCK_STREAM IPPROTO_SMC");
	socket_try(AF_INET, SOCK_RAW, 0, "socket AF_INET SOCK_RAW 0");
	socket_try(AF_INET, SOCK_RAW, IPPROTO_ICMP, "socket AF_INET SOCK_RAW IPPROTO_ICMP");
	socket_try(AF_INET, SOCK_RAW, IPPROTO_TCP, "socket AF_INET SOCK_RAW IPPROTO_TCP");
	socket_try(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "socket AF_INET6 SOCK_RAW IPPROTO_ICMPV6");
	socket_try(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "socket AF_INET SOCK_DGRAM IPPROTO_ICMP");
	socket_try(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, "socket AF_INET6 SOCK_DGRAM IPPROTO_ICMPV6");
	socket_try(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "socket AF_INET SOCK_DGRAM IPPROTO_UDPLITE");
	socket_try(AF_INET, SOCK_DGRAM, IPPROTO_L2TP_PROTOCOL, "socket AF_INET SOCK_DGRAM IPPROTO_L2TP");
	socket_try(AF_INET, SOCK_PACKET_TYPE, 0, "socket AF_INET SOCK_PACKET 0");
	socket_try(AF_INET, SOCK_STREAM, IPPROTO_UDP, "socket AF_INET SOCK_STREAM IPPROTO_UDP");
	/* The kernel reads int arguments: bits above 31 are dropped, so the filter must not let them through. */
	socket_try(HIGH_BITS | AF_INET, SOCK_STREAM, 0, "socket AF_INET with bit 32 set in the family");
	socket_try(AF_INET, SOCK_STREAM, HIGH_BITS | IPPROTO_TCP, "socket AF_INET SOCK_STREAM with bit 32 set in the protocol");
	socket_try(AF_NETLINK_FAMILY, SOCK_RAW, HIGH_BITS, "socket AF_NETLINK with bit 32 set in the protocol");
	for (int family = 0; family < FAMILIES_SWEPT; family++) {
		if (family == AF_UNIX || family == AF_INET || family == AF_INET6 || family == AF_NETLINK_FAMILY) continue;
		char label[64];
		snprintf(label, sizeof label, "socket family %d", family);
		socket_try(family, SOCK_STREAM, 0, label);
		snprintf(label, sizeof label, "socket family %d SOCK_DGRAM", family);
		socket_try(family, SOCK_DGRAM, 0, label);
	}
	/* Unfiltered, the kernel creates (and may load a module for) the socket before it refuses the pair. */
	int pair[2];
	TRY("socketpair AF_TIPC SOCK_SEQPACKET", SYS_socketpair, AF_TIPC_FAMILY, SOCK_SEQPACKET, 0, (long)pair);
	TRY("socketpair AF_VSOCK SOCK_STREAM", SYS_socketpair, AF_VSOCK_FAMILY, SOCK_STREAM, 0, (long)pair);
	TRY("socketpair AF_INET SOCK_STREAM", SYS_socketpair, AF_INET, SOCK_STREAM, 0, (long)pair);
	TRY("socketpair AF_INET6 SOCK_DGRAM", SYS_socketpair, AF_INET6, SOCK_DGRAM, 0, (long)pair);
	TRY("socketpair AF_NETLINK SOCK_RAW", SYS_socketpair, AF_NETLINK_FAMILY, SOCK_RAW, 0, (long)pair);
	TRY("socketpair AF_UNIX with bit 32 set in the family", SYS_socketpair, HIGH_BITS | AF_UNIX, SOCK_STREAM, 0, (long)pair);
	for (int family = 0; family < FAMILIES_SWEPT; family++) {
		if (family == AF_UNIX) continue;
		char label[64];
		snprintf(label, sizeof label, "socketpair family %d", family);
		TRY(label, SYS_socketpair, family, SOCK_STREAM, 0, (long)pair);
	}
}

/* Listens on loopback, connects, sends a byte and reads it back on the accepted side. */
static long stream_loopback(int family)
{
	struct sockaddr_storage addr = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
		in4->sin_family = AF_INET;
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *in4;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		len = sizeof *in6;
	}
	int server = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (server < 0 || bind(server, (struct sockaddr *)&addr, len) < 0 || listen(server, 1) < 0 ||
	    getsockname(server, (struct sockaddr *)&addr, &len) < 0)
		return -errno;
	int client = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (client < 0 || connect(client, (struct sockaddr *)&addr, len) < 0 || write(client, "x", 1) != 1)
		return -errno;
	int accepted = accept4(server, NULL, NULL, SOCK_CLOEXEC);
	char byte = 0;
	if (accepted < 0 || read(accepted, &byte, 1) != 1)
		return -errno;
	return byte == 'x' ? 0 : -EIO;
}

static long datagram_loopback(int family)
{
	struct sockaddr_storage addr = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
		in4->sin_family = AF_INET;
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *in4;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		len = sizeof *in6;
	}
	int receiver = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (receiver < 0 || bind(receiver, (struct sockaddr *)&addr, len) < 0 ||
	    getsockname(receiver, (struct sockaddr *)&addr, &len) < 0)
		return -errno;
	int sender = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sender < 0 || sendto(sender, "x", 1, 0, (struct sockaddr *)&addr, len) != 1)
		return -errno;
	char byte = 0;
	if (recv(receiver, &byte, 1, 0) != 1)
		return -errno;
	return byte == 'x' ? 0 : -EIO;
}

static long tcp4_loopback(void) { return stream_loopback(AF_INET); }
static long tcp6_loopback(void) { return stream_loopback(AF_INET6); }
static long udp4_loopback(void) { return datagram_loopback(AF_INET); }
static long udp6_loopback(void) { return datagram_loopback(AF_INET6); }

/* AI_ADDRCONFIG makes glibc ask NETLINK_ROUTE which address families are configured. */
static long resolve_localhost(void)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *found = NULL;
	int rc = getaddrinfo("localhost", "80", &hints, &found);
	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	freeaddrinfo(found);
	return 0;
}

/* glibc reads the interface list through NETLINK_ROUTE. */
static long list_interfaces(void)
{
	struct if_nameindex *names = if_nameindex();
	if (!names)
		return -errno;
	int has_lo = 0;
	for (struct if_nameindex *name = names; name->if_index; name++)
		has_lo |= !strcmp(name->if_name, "lo");
	if_freenameindex(names);
	return has_lo ? 0 : -ENODEV;
}

static void sockets_used(void)
{
	attempt(tcp4_loopback, "tcp over loopback 127.0.0.1");
	attempt(tcp6_loopback, "tcp over loopback [::1]");
	attempt(udp4_loopback, "udp over loopback 127.0.0.1");
	attempt(udp6_loopback, "udp over loopback [::1]");
	attempt(resolve_localhost, "getaddrinfo localhost AI_ADDRCONFIG");
	attempt(list_interfaces, "if_nameindex finds lo");
}

/* ---- the rest of the deny list ----------------------------------------- */

static long sched_policy(int policy)
{
	struct sched_param param = { .sched_priority = 0 };
	return result_of(sched_setscheduler(0, policy, &param));
}

static long sched_other(void) { return sched_policy(SCHED_OTHER); }
static long sched_other_reset_on_fork(void) { return sched_policy(SCHED_OTHER | SCHED_RESET_ON_FORK); }
static long sched_batch(void) { return sched_policy(SCHED_BATCH); }
static long sched_idle(void) { return sched_policy(SCHED_IDLE); }

/* vhangup hangs up the caller's controlling terminal: leave it first. */
static long vhangup_without_tty(void)
{
	setsid();
	return result_of(syscall(SYS_vhangup));
}

static void scheduling_and_memory(void)
{
	attempt(sched_other, "sched_setscheduler SCHED_OTHER");
	attempt(sched_other_reset_on_fork, "sched_setscheduler SCHED_OTHER|SCHED_RESET_ON_FORK");
	attempt(sched_batch, "sched_setscheduler SCHED_BATCH");
	attempt(sched_idle, "sched_setscheduler SCHED_IDLE");
	/* No sched_param: unfiltered, EINVAL. */
	TRY("sched_setscheduler SCHED_FIFO", SYS_sched_setscheduler, 0, SCHED_FIFO, 0);
	TRY("sched_setscheduler SCHED_RR", SYS_sched_setscheduler, 0, SCHED_RR, 0);
	TRY("sched_setscheduler SCHED_DEADLINE", SYS_sched_setscheduler, 0, SCHED_DEADLINE_POLICY, 0);
	TRY("sched_setscheduler SCHED_FIFO with bit 32 set", SYS_sched_setscheduler, 0, HIGH_BITS | SCHED_FIFO, 0);
	TRY("sched_setattr", SYS_sched_setattr, 0, 0, 0);
	TRY("mbind", SYS_mbind, 0, 0, INVALID_MODE, 0, 0, 0);
	TRY("set_mempolicy", SYS_set_mempolicy, INVALID_MODE, 0, 0);
	TRY("get_mempolicy", SYS_get_mempolicy, 0, 0, 0, 0, 0);
	TRY("set_mempolicy_home_node", SYS_set_mempolicy_home_node, 0, 0, 0, -1);
	TRY("migrate_pages", SYS_migrate_pages, 0, 0, 0, 0);
	TRY("move_pages", SYS_move_pages, 0, 0, 0, 0, 0, 0);
	TRY("memfd_secret", SYS_memfd_secret, -1);
	TRY("cachestat", SYS_cachestat, -1, 0, 0, 0);
}

static void host_wide(void)
{
	/* aio: unfiltered, EINVAL (no events, no context). */
	unsigned long aio_context = 0;
	TRY("io_setup", SYS_io_setup, 0, (long)&aio_context);
	TRY("io_destroy", SYS_io_destroy, 0);
	TRY("io_submit", SYS_io_submit, 0, 0, 0);
	TRY("io_cancel", SYS_io_cancel, 0, 0, 0);
	TRY("io_getevents", SYS_io_getevents, 0, 0, 0, 0, 0);
	TRY("io_pgetevents", SYS_io_pgetevents, 0, 0, 0, 0, 0, 0);
	TRY("sync", SYS_sync, 0);
	TRY("syncfs", SYS_syncfs, -1);
	struct timespec now = { 0 };
	struct timex read_only = { .modes = 0 };
	TRY("settimeofday", SYS_settimeofday, 0, 0);
	TRY("clock_settime", SYS_clock_settime, INVALID_CLOCK, (long)&now);
	TRY("adjtimex read-only", SYS_adjtimex, (long)&read_only);
	TRY("clock_adjtime", SYS_clock_adjtime, INVALID_CLOCK, (long)&read_only);
	/* A negative length: EINVAL even as root, so a broken filter cannot rename the host. */
	TRY("sethostname", SYS_sethostname, (long)"brig", -1);
	TRY("setdomainname", SYS_setdomainname, (long)"brig", -1);
	/* Zero segments would unload a loaded kexec image: an unknown flag makes it EINVAL. */
	TRY("kexec_load", SYS_kexec_load, 0, 0, 0, KEXEC_UNKNOWN_FLAG);
	TRY("kexec_file_load", SYS_kexec_file_load, -1, -1, 0, 0, 0);
	TRY("init_module", SYS_init_module, 0, 0, (long)"");
	TRY("finit_module", SYS_finit_module, -1, (long)"", 0);
	TRY("delete_module", SYS_delete_module, (long)"brig_no_such_module", O_NONBLOCK);
	/* No magic numbers: EINVAL even as root. */
	TRY("reboot", SYS_reboot, 0, 0, 0, 0);
	TRY("swapon", SYS_swapon, (long)MISSING_PATH, 0);
	TRY("swapoff", SYS_swapoff, (long)MISSING_PATH);
	TRY("syslog", SYS_syslog, INVALID_MODE, 0, 0);
	TRY("acct", SYS_acct, (long)MISSING_PATH);
	TRY("quotactl", SYS_quotactl, 0, 0, 0, 0);
	TRY("quotactl_fd", SYS_quotactl_fd, -1, 0, 0, 0);
	attempt(vhangup_without_tty, "vhangup");
#ifdef SYS_lookup_dcookie
	TRY("lookup_dcookie", SYS_lookup_dcookie, 0, 0, 0);
#else
	SKIP("lookup_dcookie");
#endif
#ifdef SYS_nfsservctl
	TRY("nfsservctl", SYS_nfsservctl, 0, 0, 0);
#else
	SKIP("nfsservctl");
#endif
}

static void other_processes_and_namespaces(void)
{
	TRY("ptrace PTRACE_GETEVENTMSG", SYS_ptrace, PTRACE_GETEVENTMSG, 0, 0, 0);
	TRY("process_vm_readv self", SYS_process_vm_readv, getpid(), 0, 0, 0, 0, 0);
	TRY("process_vm_writev self", SYS_process_vm_writev, getpid(), 0, 0, 0, 0, 0);
	TRY("process_madvise", SYS_process_madvise, -1, 0, 0, 0, 0);
	TRY("process_mrelease", SYS_process_mrelease, -1, 0);
	TRY("pidfd_getfd", SYS_pidfd_getfd, -1, 0, 0);
	TRY("kcmp", SYS_kcmp, getpid(), getpid(), INVALID_MODE, 0, 0);
	TRY("unshare CLONE_NEWUSER", SYS_unshare, CLONE_NEWUSER);
	TRY("unshare CLONE_NEWNET", SYS_unshare, CLONE_NEWNET);
	TRY("setns", SYS_setns, -1, 0);
	TRY("clone CLONE_NEWUSER", SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	TRY("clone CLONE_NEWNS", SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	TRY("clone3", SYS_clone3, 0, 0);
	TRY("mount", SYS_mount, (long)"none", (long)MISSING_PATH, (long)"tmpfs", 0, 0);
	TRY("umount2", SYS_umount2, (long)MISSING_PATH, 0);
	TRY("pivot_root", SYS_pivot_root, (long)MISSING_PATH, (long)MISSING_PATH);
	TRY("chroot", SYS_chroot, (long)MISSING_PATH);
	TRY("fsopen", SYS_fsopen, (long)"brig-no-such-fs", 0);
	TRY("fsconfig", SYS_fsconfig, -1, 0, 0, 0, 0);
	TRY("fsmount", SYS_fsmount, -1, 0, 0);
	TRY("fspick", SYS_fspick, AT_FDCWD, (long)MISSING_PATH, 0);
	TRY("move_mount", SYS_move_mount, -1, (long)"", -1, (long)"", 0);
	TRY("open_tree", SYS_open_tree, AT_FDCWD, (long)MISSING_PATH, 0);
	TRY("mount_setattr", SYS_mount_setattr, -1, (long)"", 0, 0, 0);
	TRY("personality ADDR_NO_RANDOMIZE", SYS_personality, ADDR_NO_RANDOMIZE);
	TRY("personality READ_IMPLIES_EXEC", SYS_personality, READ_IMPLIES_EXEC);
	TRY("personality query", SYS_personality, 0xffffffffL);
}

static void exploit_prone(void)
{
	TRY("bpf", SYS_bpf, -1, 0, 0);
	TRY("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0);
	TRY("userfaultfd", SYS_userfaultfd, -1);
	TRY("io_uring_setup", SYS_io_uring_setup, 0, 0);
	TRY("io_uring_enter", SYS_io_uring_enter, -1, 0, 0, 0, 0, 0);
	TRY("io_uring_register", SYS_io_uring_register, -1, 0, 0, 0);
	TRY("keyctl", SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
	/* An empty key type: EINVAL, without the kernel asking modprobe for a key-type module. */
	TRY("add_key", SYS_add_key, (long)"", (long)"x", 0, 0, KEY_SPEC_PROCESS_KEYRING);
	TRY("request_key", SYS_request_key, (long)"", (long)"x", 0, 0);
	TRY("fanotify_init", SYS_fanotify_init, -1, 0);
	TRY("fanotify_mark", SYS_fanotify_mark, -1, 0, 0, -1, 0);
	TRY("name_to_handle_at", SYS_name_to_handle_at, AT_FDCWD, (long)MISSING_PATH, 0, 0, 0);
	TRY("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0);
#ifdef SYS_modify_ldt
	TRY("modify_ldt", SYS_modify_ldt, 0, 0, 0);
	TRY("iopl", SYS_iopl, 0);
	TRY("ioperm", SYS_ioperm, 0, 0, 0);
#else
	SKIP("modify_ldt");
	SKIP("iopl");
	SKIP("ioperm");
#endif
}

static void obsolete(void)
{
#ifdef SYS_uselib
	TRY("uselib", SYS_uselib, (long)MISSING_PATH);
	TRY("ustat", SYS_ustat, 0, 0);
	TRY("sysfs", SYS_sysfs, INVALID_MODE, 0, 0);
	TRY("_sysctl", SYS__sysctl, 0);
#else
	SKIP("uselib");
	SKIP("ustat");
	SKIP("sysfs");
	SKIP("_sysctl");
#endif
	TRY("remap_file_pages", SYS_remap_file_pages, 0, 0, 0, 0, 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	sockets_allowed();
	sockets_used();
	sockets_refused();
	scheduling_and_memory();
	host_wide();
	other_processes_and_namespaces();
	exploit_prone();
	obsolete();
	printf("done\n");
	return 0;
}
