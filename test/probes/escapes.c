/*
 * escapes: tries, from inside a sandbox, every way out we thought of, and
 * prints one "what: result" line per attempt, where result is "ok" (plus a
 * detail) or the errno name the attempt failed with. It never decides what
 * is acceptable: the test does, from these lines.
 *
 * stdin, one "key value" per line, all optional:
 *   port N        a TCP port the test listens on in the host
 *   hostip A.B.C.D   the host's own address
 *   canary PATH   a file the test made in the host's /tmp
 *   abstract NAME an abstract unix socket the test listens on in the host
 *   secret NAME   an environment variable name the test set in its own process
 *
 * Dangerous calls use arguments that are harmless even if they went through
 * (a fresh tmpfs on the sandbox's own /tmp, a namespace in a child that exits
 * at once), so a broken filter shows up as "ok", never as damage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/nsfs.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 1000
#define AF_VSOCK_FAMILY 40
#define AF_ALG_FAMILY 38
#define MAX_PIDS 64
#define HOST_DISK_MAJOR 254

static struct {
  int port;
  char hostip[256], canary[256], abstract[101], secret[256];
} in;

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E?";
}

/* "what: ok" or "what: ERRNO" for a syscall-style return value. */
static void report(long rc, const char *fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf(": %s\n", rc < 0 ? errname(err) : "ok");
}

static void read_input(void) {
  char key[32], value[256];
  while (scanf("%31s %255s", key, value) == 2) {
    if (!strcmp(key, "port")) in.port = atoi(value);
    else if (!strcmp(key, "hostip")) snprintf(in.hostip, sizeof in.hostip, "%s", value);
    else if (!strcmp(key, "canary")) snprintf(in.canary, sizeof in.canary, "%s", value);
    else if (!strcmp(key, "abstract")) snprintf(in.abstract, sizeof in.abstract, "%.100s", value);
    else if (!strcmp(key, "secret")) snprintf(in.secret, sizeof in.secret, "%s", value);
  }
}

/* Reads a whole small file; NUL bytes become spaces. Returns length or -1. */
static long slurp(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t used = 0;
  ssize_t n;
  while (used < size - 1 && (n = read(fd, buf + used, size - 1 - used)) > 0) used += n;
  int err = errno;
  close(fd);
  if (n < 0) { errno = err; return -1; }
  for (size_t i = 0; i < used; i++) if (buf[i] == 0) buf[i] = ' ';
  buf[used] = 0;
  return used;
}

/* ---- who am I ---------------------------------------------------------- */

static void identity(void) {
  char buf[8192];
  printf("getuid: %d\ngeteuid: %d\ngetgid: %d\ngetpid: %d\ngetppid: %d\n", getuid(), geteuid(), getgid(), getpid(), getppid());
  static const char *keys[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp" };
  if (slurp("/proc/self/status", buf, sizeof buf) < 0) { report(-1, "read /proc/self/status"); return; }
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      size_t k = strlen(keys[i]);
      if (!strncmp(line, keys[i], k) && line[k] == ':') {
        char *v = line + k + 1;
        while (*v == ' ' || *v == '\t') v++;
        printf("status %s: %s\n", keys[i], v);
      }
    }
  }
  static const char *maps[] = { "/proc/self/uid_map", "/proc/self/gid_map" };
  for (int m = 0; m < 2; m++) {
    if (slurp(maps[m], buf, sizeof buf) < 0) { report(-1, "read %s", maps[m]); continue; }
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
      unsigned long inner, outer, count;
      if (sscanf(line, "%lu %lu %lu", &inner, &outer, &count) == 3) printf("%s: %lu %lu %lu\n", maps[m] + 11, inner, outer, count);
    }
  }
  if (slurp("/proc/self/cgroup", buf, sizeof buf) >= 0) {
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) printf("cgroup: %s\n", line);
  }
  /* The owner of our user namespace, as seen from inside: 0 is the host id
   * that inner root maps to (the slot's); host root is unmapped (65534). */
  int ns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
  uid_t owner;
  if (ns < 0 || ioctl(ns, NS_GET_OWNER_UID, &owner) < 0) report(-1, "userns owner");
  else printf("userns owner: %u\n", owner);
  if (ns >= 0) close(ns);
  /* "limit Max core file size: 1 1" for each line of /proc/self/limits. */
  if (slurp("/proc/self/limits", buf, sizeof buf) < 0) { report(-1, "read /proc/self/limits"); return; }
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "Max ", 4)) continue;
    char name[32], soft[32], hard[32];
    if (sscanf(line, "%25[^\n]%31s %31s", name, soft, hard) != 3) continue;
    for (int i = (int)strlen(name) - 1; i >= 0 && name[i] == ' '; i--) name[i] = 0;
    printf("limit %s: %s %s\n", name, soft, hard);
  }
}

/* ---- what can I see ---------------------------------------------------- */

static int list_pids(int *pids) {
  int n = 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < MAX_PIDS) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (!*end && pid > 0) pids[n++] = (int)pid;
  }
  closedir(d);
  return n;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void proc_view(void) {
  int pids[MAX_PIDS], n = list_pids(pids);
  qsort(pids, n, sizeof pids[0], cmp_int);
  printf("proc pids:");
  for (int i = 0; i < n; i++) printf(" %d", pids[i]);
  printf("\n");
  char path[64], buf[16384];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/proc/%d/environ", pids[i]);
    long len = slurp(path, buf, sizeof buf);
    if (len < 0) { report(-1, "read %s", path); continue; }
    int leaked = in.secret[0] && strstr(buf, in.secret);
    printf("read %s: ok (%ld bytes, %s) %s\n", path, len, leaked ? "SECRET PRESENT" : "secret absent", buf);
  }
  if (slurp("/proc/1/cmdline", buf, sizeof buf) >= 0) printf("read /proc/1/cmdline: ok (%s)\n", buf);
  else report(-1, "read /proc/1/cmdline");
  if (slurp("/proc/self/mountinfo", buf, sizeof buf) >= 0) {
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) printf("mountinfo: %s\n", line);
  }
  extern char **environ;
  for (char **e = environ; *e; e++) printf("env: %s\n", *e);
}

static void try_list(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) { report(-1, "list %s", dir); return; }
  printf("list %s: ok (", dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    printf("%s%s", n++ ? " " : "", e->d_name);
  }
  printf(")\n");
  closedir(d);
}

static void try_read(const char *path) {
  char buf[256];
  long len = slurp(path, buf, sizeof buf);
  if (len < 0) report(-1, "read %s", path);
  else printf("read %s: ok (%ld bytes)\n", path, len);
}

/* Every entry of a /proc folder but the pids: "proc NAME: file N bytes",
 * "proc NAME: dir N entries" or the errno. A masked file reads 0 bytes, a
 * masked folder has no entries; the test decides what may show more. */
static void proc_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) { report(-1, "list %s", dir); return; }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || (e->d_name[0] >= '0' && e->d_name[0] <= '9')) continue;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) < 0) { report(-1, "proc %s", path); continue; }
    if (S_ISDIR(st.st_mode)) {
      DIR *sub = opendir(path);
      if (!sub) { report(-1, "proc %s", path); continue; }
      int n = 0;
      for (struct dirent *f; (f = readdir(sub));) n += f->d_name[0] != '.';
      closedir(sub);
      printf("proc %s: dir %d entries\n", path, n);
      continue;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) { report(-1, "proc %s", path); continue; }
    static char buf[1 << 16];
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && total < (1 << 20)) total += n;
    int err = errno;
    close(fd);
    if (n < 0 && total == 0) { errno = err; report(-1, "proc %s", path); continue; }
    printf("proc %s: file %ld bytes\n", path, total);
  }
  closedir(d);
}

static void host_files(void) {
  try_read("/etc/shadow");
  try_read("/etc/gshadow");
  try_read("/proc/1/environ");
  try_read("/proc/1/root/etc/hostname");
  try_read("/proc/1/mem");
  try_read("/proc/kcore");
  try_read("/proc/kmsg");
  try_list("/root");
  try_list("/home");
  try_list("/var");
  try_list("/run");
  try_list("/sys");
  try_list("/sys/fs/cgroup");
  try_list("/dev");
  try_list("/tmp");
  try_list("/proc/1/root/tmp");
  try_list("/usr");
  try_list("/usr/local");
  try_read("/usr/local/etc/npmrc");
  try_read("/usr/etc/npmrc");
  try_list("/usr/src");
  proc_entries("/proc");
  proc_entries("/proc/sys");
  if (in.canary[0]) {
    struct stat st;
    report(stat(in.canary, &st), "stat canary %s", in.canary);
    report(unlink(in.canary), "unlink canary %s", in.canary);
  }
}

/* ---- network ----------------------------------------------------------- */

static void interfaces(void) {
  char buf[8192];
  if (slurp("/proc/net/dev", buf, sizeof buf) < 0) { report(-1, "read /proc/net/dev"); return; }
  printf("interfaces:");
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    char *colon = strchr(line, ':');
    if (!colon || strchr(line, '|')) continue;
    *colon = 0;
    while (*line == ' ') line++;
    printf(" %s", line);
  }
  printf("\n");
  try_list("/sys/class/net");
}

/* Non-blocking connect with a timeout, so a filtered route cannot hang the probe. */
static int connect_with_timeout(int fd, const struct sockaddr *addr, socklen_t len) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  int ready = poll(&p, 1, CONNECT_TIMEOUT_MS);
  if (ready == 0) { errno = ETIMEDOUT; return -1; }
  int err = 0;
  socklen_t errlen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen);
  if (err) { errno = err; return -1; }
  return 0;
}

static void try_tcp4(const char *ip, int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, ip, &a.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) { report(-1, "socket tcp for %s:%d", ip, port); return; }
  report(connect_with_timeout(fd, (struct sockaddr *)&a, sizeof a), "connect %s:%d", ip, port);
  close(fd);
}

static void try_tcp6_loopback(int port) {
  struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) { report(-1, "socket tcp6"); return; }
  report(connect_with_timeout(fd, (struct sockaddr *)&a, sizeof a), "connect [::1]:%d", port);
  close(fd);
}

static void try_udp4(const char *ip, int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, ip, &a.sin_addr);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { report(-1, "socket udp"); return; }
  report(sendto(fd, "x", 1, 0, (struct sockaddr *)&a, sizeof a), "sendto udp %s:%d", ip, port);
  close(fd);
}

static void try_abstract(const char *name) {
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  size_t len = strlen(name);
  memcpy(a.sun_path + 1, name, len);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) { report(-1, "socket unix"); return; }
  report(connect(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + len), "connect abstract unix @%s", name);
  close(fd);
}

static void network(void) {
  interfaces();
  try_tcp4("127.0.0.1", 6379);
  try_tcp4("8.8.8.8", 53);
  try_udp4("8.8.8.8", 53);
  if (in.port) {
    try_tcp4("127.0.0.1", in.port);
    try_tcp6_loopback(in.port);
    if (in.hostip[0]) try_tcp4(in.hostip, in.port);
  }
  if (in.abstract[0]) try_abstract(in.abstract);
  report(socket(AF_PACKET, SOCK_RAW, 0), "socket AF_PACKET");
  report(socket(AF_VSOCK_FAMILY, SOCK_STREAM, 0), "socket AF_VSOCK");
  report(socket(AF_ALG_FAMILY, SOCK_SEQPACKET, 0), "socket AF_ALG");
  report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "socket raw icmp");
}

/* ---- kernel interfaces ------------------------------------------------- */

/* clone with namespace flags, raw, so glibc cannot substitute clone3. */
static void try_clone(unsigned long flags, const char *what) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid == 0) _exit(0);
  report(pid, "clone %s", what);
  if (pid > 0) waitpid(pid, NULL, 0);
}

static void syscalls(void) {
  report(mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m"), "mount tmpfs /tmp");
  report(mount("sysfs", "/tmp", "sysfs", 0, NULL), "mount sysfs /tmp");
  report(mount("cgroup", "/tmp", "cgroup", 0, "memory"), "mount cgroup /tmp");
  report(mount("/usr/bin", "/usr/bin", NULL, MS_REMOUNT | MS_BIND, NULL), "remount /usr/bin rw");
  report(umount2("/proc", MNT_DETACH), "umount /proc");
  report(umount2("/proc/cmdline", MNT_DETACH), "umount /proc/cmdline");
  report(umount2("/proc/sys/kernel", MNT_DETACH), "umount /proc/sys/kernel");
  report(mount("/proc/sys", "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL), "remount /proc/sys rw");
  report(unshare(CLONE_NEWUSER), "unshare CLONE_NEWUSER");
  report(unshare(CLONE_NEWNS), "unshare CLONE_NEWNS");
  report(unshare(CLONE_NEWNET), "unshare CLONE_NEWNET");
  report(unshare(CLONE_NEWPID), "unshare CLONE_NEWPID");
  try_clone(CLONE_NEWNET, "CLONE_NEWNET");
  try_clone(CLONE_NEWUSER, "CLONE_NEWUSER");
  try_clone(CLONE_NEWNS, "CLONE_NEWNS");
  struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
  long pid3 = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid3 == 0) _exit(0);
  report(pid3, "clone3 CLONE_NEWUSER");
  if (pid3 > 0) waitpid(pid3, NULL, 0);

  int nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  report(nsfd < 0 ? -1 : setns(nsfd, 0), "setns /proc/self/ns/net");
  if (nsfd >= 0) close(nsfd);
  report(open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC), "open /proc/1/ns/mnt");

  report(ptrace(PTRACE_TRACEME, 0, NULL, NULL), "ptrace PTRACE_TRACEME");
  report(ptrace(PTRACE_ATTACH, 1, NULL, NULL), "ptrace PTRACE_ATTACH pid 1");
  char byte;
  struct iovec local = { &byte, 1 }, remote = { (void *)0x400000, 1 };
  report(process_vm_readv(1, &local, 1, &remote, 1, 0), "process_vm_readv pid 1");

  report(setuid(0), "setuid 0");
  report(setgid(0), "setgid 0");
  report(setresuid(0, 0, 0), "setresuid 0");
  report(setgroups(0, NULL), "setgroups");
  report(chroot("/tmp"), "chroot /tmp");
  report(syscall(SYS_pivot_root, "/tmp", "/tmp"), "pivot_root");
  report(sethostname("escaped", 7), "sethostname");
  report(kill(1, SIGKILL), "kill pid 1");

  report(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1), "keyctl get session keyring");
  report(syscall(SYS_add_key, "user", "brig-probe", "x", 1, KEY_SPEC_SESSION_KEYRING), "add_key");
  union bpf_attr battr = { .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1 };
  report(syscall(SYS_bpf, BPF_MAP_CREATE, &battr, sizeof battr), "bpf BPF_MAP_CREATE");
  struct perf_event_attr pattr = { .type = PERF_TYPE_SOFTWARE, .size = sizeof pattr, .config = PERF_COUNT_SW_CPU_CLOCK };
  report(syscall(SYS_perf_event_open, &pattr, 0, -1, -1, 0), "perf_event_open");
  struct io_uring_params uparams = { 0 };
  report(syscall(SYS_io_uring_setup, 1, &uparams), "io_uring_setup");
  report(syscall(SYS_userfaultfd, 0), "userfaultfd");
  struct { unsigned int bytes; int type; unsigned char handle[8]; } fh = { 8, 1, { 0 } };
  report(syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY), "open_by_handle_at");
  report(personality(ADDR_NO_RANDOMIZE), "personality ADDR_NO_RANDOMIZE");
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_max += 1;
  rl.rlim_cur = rl.rlim_max;
  report(setrlimit(RLIMIT_NOFILE, &rl), "raise RLIMIT_NOFILE hard limit");

  report(mknod("/tmp/null", S_IFCHR | 0666, makedev(1, 3)), "mknod char 1:3");
  report(mknod("/tmp/disk", S_IFBLK | 0666, makedev(HOST_DISK_MAJOR, 0)), "mknod block %d:0", HOST_DISK_MAJOR);
  report(mknod("/tmp/fifo", S_IFIFO | 0666, 0), "mknod fifo");
}

/* ---- the filesystem ---------------------------------------------------- */

static void try_write(const char *path, int flags) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | flags, 0644);
  if (fd < 0) { report(-1, "write %s", path); return; }
  report(write(fd, "1", 1), "write %s", path);
  close(fd);
}

static void mount_flags(const char *path) {
  struct statvfs s;
  if (statvfs(path, &s) < 0) { report(-1, "statvfs %s", path); return; }
  printf("statvfs %s: ok (%s %s %s)\n", path, s.f_flag & ST_RDONLY ? "ro" : "rw", s.f_flag & ST_NOSUID ? "nosuid" : "suid", s.f_flag & ST_NODEV ? "nodev" : "dev");
}

static void filesystem(void) {
  try_write("/usr/brig-probe", O_CREAT);
  try_write("/usr/bin/brig-probe", O_CREAT);
  try_write("/usr/bin/env", O_APPEND);
  try_write("/etc/brig-probe", O_CREAT);
  try_write("/etc/passwd", O_APPEND);
  try_write("/brig-probe", O_CREAT);
  try_write("/proc/sys/kernel/hostname", 0);
  try_write("/proc/sys/vm/drop_caches", 0);
  try_write("/proc/sysrq-trigger", 0);
  try_write("/proc/sys/net/ipv4/ip_forward", 0);
  try_write("/proc/sys/vm/overcommit_memory", 0);
  char adj[16] = "";
  if (slurp("/proc/self/oom_score_adj", adj, sizeof adj) < 0) report(-1, "read /proc/self/oom_score_adj");
  else printf("oom_score_adj: %ld\n", strtol(adj, NULL, 10));
  static const char *lower[] = { "-1000", "0", "999" };
  int fd;
  for (size_t i = 0; i < sizeof lower / sizeof lower[0]; i++) {
    fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    report(fd < 0 ? -1 : write(fd, lower[i], strlen(lower[i])), "write %s to /proc/self/oom_score_adj", lower[i]);
    if (fd >= 0) close(fd);
  }

  /* A setuid file of our own: harmless only if the mounts ignore the bit. */
  fd = open("/box/suid", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  if (fd >= 0) close(fd);
  report(fd < 0 ? -1 : chmod("/box/suid", 04755), "chmod 4755 /box/suid");
  struct stat st;
  if (stat("/box/suid", &st) == 0) printf("stat /box/suid: ok (mode %o)\n", st.st_mode & 07777);
  static const char *mounts[] = { "/", "/box", "/tmp", "/dev/shm", "/usr/bin", "/usr/lib", "/dev", "/proc/sys" };
  for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) mount_flags(mounts[i]);

  /* A setuid-root binary of the image: no_new_privs and nosuid must make it powerless. */
  int pipefd[2];
  if (pipe(pipefd) < 0) { report(-1, "pipe"); return; }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    mkdir("/tmp/m", 0755);
    execl("/usr/bin/mount", "mount", "-t", "tmpfs", "none", "/tmp/m", (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  char out[512] = "";
  size_t used = 0;
  ssize_t n;
  while (used < sizeof out - 1 && (n = read(pipefd[0], out + used, sizeof out - 1 - used)) > 0) used += n;
  out[used] = 0;
  for (char *p = out; *p; p++) if (*p == '\n') *p = ' ';
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  printf("exec setuid-root /usr/bin/mount -t tmpfs: exit %d (%s)\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
}

/* ---- signals, last: kill(-1) ends everything else in the sandbox ------ */

static void kill_everything(void) {
  pid_t child = fork();
  if (child == 0) { pause(); _exit(0); }
  report(kill(-1, SIGKILL), "kill -1 SIGKILL");
  int status = 0;
  waitpid(child, &status, 0);
  printf("own child after kill -1: %s\n", WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? "killed" : "alive");
  printf("probe after kill -1: alive\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  read_input();
  identity();
  proc_view();
  host_files();
  network();
  syscalls();
  filesystem();
  kill_everything();
  printf("done\n");
  return 0;
}
