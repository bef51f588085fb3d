/*
 * seccomp-check: loads a classic BPF seccomp filter from a file the way the
 * launcher does (no_new_privs, then seccomp(SECCOMP_SET_MODE_FILTER)), then
 * tries syscalls a sandboxed program might use to escape, and ordinary ones.
 *
 * Usage: seccomp-check FILTER.bpf
 *        seccomp-check FILTER.bpf --exec PROGRAM [ARG...]
 * Output: one line per probe, "<name> <result>", where result is "ok", the
 * errno number the call failed with, or "signal:<n>" if the probe was killed.
 * With --exec it loads the filter and execs PROGRAM instead, as the launcher
 * will, so real toolchains can be run under the filter.
 *
 * Every probe runs in its own forked child, so a call the filter wrongly lets
 * through (unshare, ptrace) cannot change the state of the next probe. The
 * arguments are chosen so that, unfiltered, each dangerous call fails or is
 * harmless even as root: an EPERM therefore comes from the filter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MISSING_PATH "/nonexistent-brig-probe/dir"
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING (-3)
#define AF_VSOCK_FAMILY 40
#define AF_TIPC_FAMILY 30
#define NETLINK_XFRM_PROTOCOL 6
#define NETLINK_UEVENT_PROTOCOL 15
#define NETLINK_GENERIC_PROTOCOL 16
#define IPPROTO_MPTCP_PROTOCOL 262
#define INVALID_MEMPOLICY_MODE 99
#define ADDR_NO_RANDOMIZE_PERSONA 0x0040000
#define PERSONALITY_QUERY 0xffffffffUL
#define X32_SYSCALL_BIT 0x40000000L
#define X32_NR_UNSHARE 272L
#define I386_NR_GETPID 20L
#define I386_NR_UNSHARE 310L
#define EXIT_OK 0
#define EXIT_UNKNOWN 255

/* Each probe returns >= 0 on success or -errno. */
typedef long (*probe_fn)(void);

static long result_of(long rc)
{
	return rc < 0 ? -errno : rc;
}

static long probe_getpid(void) { return result_of(syscall(SYS_getpid)); }

static long probe_write_devnull(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	long rc = result_of(write(fd, "x", 1));
	close(fd);
	return rc;
}

/* A fork through clone() without namespace flags, as glibc's fork does. */
static long probe_clone_fork(void)
{
	long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, 0L, 0L, 0L, 0L);
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(EXIT_OK);
	int status;
	waitpid((pid_t)pid, &status, 0);
	return 0;
}

static long probe_clone_newuser(void)
{
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
	if (pid == 0)
		_exit(EXIT_OK);
	return result_of(pid);
}

/* Only the size of struct clone_args matters: the filter must answer first. */
static long probe_clone3(void)
{
	uint64_t args[11] = { 0 };
	args[0] = CLONE_NEWUSER;
	args[4] = SIGCHLD; /* exit_signal */
	long pid = syscall(SYS_clone3, args, sizeof(args));
	if (pid == 0)
		_exit(EXIT_OK);
	return result_of(pid);
}

static long probe_unshare_newuser(void) { return result_of(unshare(CLONE_NEWUSER)); }
static long probe_unshare_newns(void) { return result_of(unshare(CLONE_NEWNS)); }
static long probe_setns(void) { return result_of(setns(-1, 0)); }
static long probe_mount(void) { return result_of(mount("none", MISSING_PATH, "tmpfs", 0, NULL)); }
static long probe_umount2(void) { return result_of(umount2(MISSING_PATH, 0)); }
static long probe_chroot(void) { return result_of(chroot(MISSING_PATH)); }

static long probe_pivot_root(void)
{
	return result_of(syscall(SYS_pivot_root, MISSING_PATH, MISSING_PATH));
}

static long probe_ptrace_traceme(void) { return result_of(ptrace(PTRACE_TRACEME, 0, NULL, NULL)); }

static long probe_process_vm_readv(void)
{
	return result_of(process_vm_readv(getpid(), NULL, 0, NULL, 0, 0));
}

static long probe_keyctl(void)
{
	return result_of(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

static long probe_bpf(void) { return result_of(syscall(SYS_bpf, -1, NULL, 0)); }
static long probe_perf_event_open(void) { return result_of(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)); }
static long probe_userfaultfd(void) { return result_of(syscall(SYS_userfaultfd, O_CLOEXEC)); }
static long probe_io_uring_setup(void) { return result_of(syscall(SYS_io_uring_setup, 0, NULL)); }

static long probe_socket_inet(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* A socket the filter allows, closed at once. */
static long socket_and_close(int family, int type, int protocol)
{
	int fd = socket(family, type, protocol);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static long socketpair_and_close(int family, int type)
{
	int fds[2];
	if (socketpair(family, type, 0, fds) < 0)
		return -errno;
	close(fds[0]);
	close(fds[1]);
	return 0;
}

static long probe_socket_vsock(void) { return result_of(socket(AF_VSOCK_FAMILY, SOCK_STREAM, 0)); }
static long probe_socket_packet(void) { return result_of(socket(AF_PACKET, SOCK_RAW, 0)); }
static long probe_socket_inet6_udp(void) { return socket_and_close(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_UDP); }
static long probe_socket_netlink_route(void) { return socket_and_close(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0); }
static long probe_socket_netlink_xfrm(void) { return socket_and_close(AF_NETLINK, SOCK_RAW, NETLINK_XFRM_PROTOCOL); }
static long probe_socket_netlink_uevent(void) { return socket_and_close(AF_NETLINK, SOCK_DGRAM, NETLINK_UEVENT_PROTOCOL); }
static long probe_socket_netlink_generic(void) { return socket_and_close(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC_PROTOCOL); }
static long probe_socket_mptcp(void) { return socket_and_close(AF_INET, SOCK_STREAM, IPPROTO_MPTCP_PROTOCOL); }
/* Protocol 0 picks any protocol registered for the type: SCTP for SOCK_SEQPACKET, if its module is loaded. */
static long probe_socket_inet_seqpacket(void) { return socket_and_close(AF_INET, SOCK_SEQPACKET, 0); }
static long probe_socket_raw_icmp(void) { return socket_and_close(AF_INET, SOCK_RAW, IPPROTO_ICMP); }
static long probe_socketpair_unix(void) { return socketpair_and_close(AF_UNIX, SOCK_STREAM); }
/* Unfiltered, the kernel creates (and loads the module for) a TIPC or VSOCK socket before it refuses the pair. */
static long probe_socketpair_tipc(void) { return socketpair_and_close(AF_TIPC_FAMILY, SOCK_SEQPACKET); }
static long probe_socketpair_vsock(void) { return socketpair_and_close(AF_VSOCK_FAMILY, SOCK_STREAM); }
static long probe_socketpair_inet(void) { return socketpair_and_close(AF_INET, SOCK_STREAM); }

/* Unfiltered: EINVAL (no events asked for), so ENOSYS comes from the filter. */
static long probe_io_setup(void)
{
	unsigned long context = 0;
	return result_of(syscall(SYS_io_setup, 0, &context));
}

static long probe_sync(void) { return result_of(syscall(SYS_sync)); }
/* Unfiltered: EBADF. */
static long probe_syncfs(void) { return result_of(syscall(SYS_syncfs, -1)); }
/* Unfiltered: EINVAL (no sched_param), even as root. */
static long probe_sched_setscheduler_fifo(void) { return result_of(syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, NULL)); }

static long probe_sched_setscheduler_other(void)
{
	struct sched_param param = { .sched_priority = 0 };
	return result_of(sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &param));
}

/* Unfiltered: EINVAL or EFAULT (no attributes). */
static long probe_sched_setattr(void) { return result_of(syscall(SYS_sched_setattr, 0, NULL, 0)); }
static long probe_set_mempolicy(void) { return result_of(syscall(SYS_set_mempolicy, INVALID_MEMPOLICY_MODE, NULL, 0)); }
static long probe_personality_query(void) { return result_of(personality(PERSONALITY_QUERY)); }
static long probe_personality_no_aslr(void) { return result_of(personality(ADDR_NO_RANDOMIZE_PERSONA)); }

#ifdef __x86_64__
/* The i386 ABI through int 0x80: the kernel reports AUDIT_ARCH_I386 to seccomp. */
static long int80(long nr, long arg1)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(arg1) : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

static long probe_i386_getpid(void) { return int80(I386_NR_GETPID, 0); }
static long probe_i386_unshare(void) { return int80(I386_NR_UNSHARE, CLONE_NEWUSER); }

/* The x32 ABI: x86_64 arch, syscall numbers with bit 30 set. */
static long probe_x32_unshare(void)
{
	return result_of(syscall(X32_SYSCALL_BIT | X32_NR_UNSHARE, CLONE_NEWUSER));
}
#endif

struct probe {
	const char *name;
	probe_fn fn;
};

static const struct probe probes[] = {
	{ "getpid", probe_getpid },
	{ "write_devnull", probe_write_devnull },
	{ "clone_fork", probe_clone_fork },
	{ "clone_newuser", probe_clone_newuser },
	{ "clone3", probe_clone3 },
	{ "unshare_newuser", probe_unshare_newuser },
	{ "unshare_newns", probe_unshare_newns },
	{ "setns", probe_setns },
	{ "mount", probe_mount },
	{ "umount2", probe_umount2 },
	{ "chroot", probe_chroot },
	{ "pivot_root", probe_pivot_root },
	{ "ptrace_traceme", probe_ptrace_traceme },
	{ "process_vm_readv", probe_process_vm_readv },
	{ "keyctl", probe_keyctl },
	{ "bpf", probe_bpf },
	{ "perf_event_open", probe_perf_event_open },
	{ "userfaultfd", probe_userfaultfd },
	{ "io_uring_setup", probe_io_uring_setup },
	{ "socket_inet", probe_socket_inet },
	{ "socket_vsock", probe_socket_vsock },
	{ "socket_packet", probe_socket_packet },
	{ "socket_inet6_udp", probe_socket_inet6_udp },
	{ "socket_netlink_route", probe_socket_netlink_route },
	{ "socket_netlink_xfrm", probe_socket_netlink_xfrm },
	{ "socket_netlink_uevent", probe_socket_netlink_uevent },
	{ "socket_netlink_generic", probe_socket_netlink_generic },
	{ "socket_mptcp", probe_socket_mptcp },
	{ "socket_inet_seqpacket", probe_socket_inet_seqpacket },
	{ "socket_raw_icmp", probe_socket_raw_icmp },
	{ "socketpair_unix", probe_socketpair_unix },
	{ "socketpair_tipc", probe_socketpair_tipc },
	{ "socketpair_vsock", probe_socketpair_vsock },
	{ "socketpair_inet", probe_socketpair_inet },
	{ "io_setup", probe_io_setup },
	{ "sync", probe_sync },
	{ "syncfs", probe_syncfs },
	{ "sched_setscheduler_fifo", probe_sched_setscheduler_fifo },
	{ "sched_setscheduler_other", probe_sched_setscheduler_other },
	{ "sched_setattr", probe_sched_setattr },
	{ "set_mempolicy", probe_set_mempolicy },
	{ "personality_query", probe_personality_query },
	{ "personality_no_aslr", probe_personality_no_aslr },
#ifdef __x86_64__
	{ "i386_getpid", probe_i386_getpid },
	{ "i386_unshare", probe_i386_unshare },
	{ "x32_unshare", probe_x32_unshare },
#endif
};

static int load_filter(const char *path)
{
	FILE *file = fopen(path, "rb");
	if (!file) {
		perror("seccomp-check: open filter");
		return -1;
	}
	static struct sock_filter instructions[BPF_MAXINSNS + 1];
	size_t count = fread(instructions, sizeof(instructions[0]), BPF_MAXINSNS + 1, file);
	fclose(file);
	if (count == 0 || count > BPF_MAXINSNS) {
		fprintf(stderr, "seccomp-check: filter has %zu instructions\n", count);
		return -1;
	}
	struct sock_fprog program = { .len = (unsigned short)count, .filter = instructions };
	/* The kernel refuses an unprivileged filter unless no_new_privs is set. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("seccomp-check: PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
		perror("seccomp-check: seccomp(SECCOMP_SET_MODE_FILTER)");
		return -1;
	}
	return 0;
}

static void run_probe(const struct probe *probe)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("%s fork-failed:%d\n", probe->name, errno);
		return;
	}
	if (pid == 0) {
		long rc = probe->fn();
		_exit(rc >= 0 ? EXIT_OK : (-rc > 0 && -rc < EXIT_UNKNOWN ? (int)-rc : EXIT_UNKNOWN));
	}
	int status;
	if (waitpid(pid, &status, 0) < 0) {
		printf("%s wait-failed:%d\n", probe->name, errno);
	} else if (WIFSIGNALED(status)) {
		printf("%s signal:%d\n", probe->name, WTERMSIG(status));
	} else if (WEXITSTATUS(status) == EXIT_OK) {
		printf("%s ok\n", probe->name);
	} else {
		printf("%s %d\n", probe->name, WEXITSTATUS(status));
	}
}

int main(int argc, char **argv)
{
	int exec_mode = argc >= 4 && strcmp(argv[2], "--exec") == 0;
	if (argc != 2 && !exec_mode) {
		fprintf(stderr, "usage: seccomp-check FILTER.bpf [--exec PROGRAM [ARG...]]\n");
		return 2;
	}
	if (load_filter(argv[1]) != 0)
		return 1;
	if (exec_mode) {
		execvp(argv[3], &argv[3]);
		perror("seccomp-check: execvp");
		return 127;
	}
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		run_probe(&probes[i]);
	return 0;
}
