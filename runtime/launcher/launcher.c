/*
 * brig-launcher: builds one throwaway container and runs one program in it.
 *
 * Node cannot do this itself: it is multi-threaded, and a multi-threaded
 * process cannot unshare a user namespace. So, like runc's nsexec, this small
 * program does only what the runtime cannot: clone into namespaces, write the
 * id maps, mount the root filesystem, pivot_root, drop privileges, load the
 * seccomp filter and exec. Every decision (which limits, which filter, which
 * image) is made by the TypeScript runtime and arrives on argv and fds; see
 * protocol.h for the wire protocol. Any failure ends the sandbox: we fail closed.
 *
 * Three processes take part:
 *   launcher  (host root)    creates the namespaces as the slot's host id,
 *                            writes the id maps, joins cgroups, relays status
 *   init      (pid 1 inside) builds the mounts, waits for go, reaps, reports
 *   program   (pid 2 inside) drops to the inner user, seccomp, execve
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h> /* glibc 2.36: also fspick, move_mount and open_tree flags */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_ITEMS 32
/* --mask and --ro paths: /proc alone has a few dozen entries worth hiding. */
#define MAX_PATHS 128
#define MAX_BPF_BYTES (64 * 1024)
#define PATH_BYTES 4096
#define DEV_TMPFS_OPTS "size=65536,mode=0755"
/* A masked directory: an empty tmpfs, mounted read-only, with room for nothing. */
#define MASK_TMPFS_OPTS "size=4k,nr_inodes=1,mode=0555"
/* The writable tmpfs mounts are made at --tmpfs-bytes (the slot's default
 * disk limit) while the sandbox is prepared, and resized at go only for a
 * step whose limit differs (resize_tmpfs), so a prepared sandbox fits any
 * request and the common one pays nothing for it. */
#define OOM_SCORE_ADJ_MIN (-1000)
#define OOM_SCORE_ADJ_MAX 1000
/* A day: far above any wall limit a judge grants, and small enough that the
 * deadline in microseconds cannot overflow. */
#define MAX_WALL_MS (24ULL * 60 * 60 * 1000)
#define US_PER_MS 1000
#define US_PER_S 1000000
#define NS_PER_US 1000
#define NS_PER_S 1000000000LL

struct bind { const char *src, *dst; };
struct rlim { int resource; rlim_t value; };

/* What argv says: the same for every sandbox of a slot. */
static struct {
  unsigned long map_root, map_user;
  const char *lower[MAX_ITEMS]; int n_lower;
  struct bind binds[MAX_ITEMS]; int n_binds;
  const char *cgroups[MAX_ITEMS]; int n_cgroups;
  const char *masks[MAX_PATHS]; int n_masks;
  const char *read_only[MAX_PATHS]; int n_read_only;
  const char *scratch, *hostname, *oom_score_adj;
  unsigned long long tmpfs_bytes;
} cfg = { .hostname = "brig" };

/* The go message as received by init, the words it splits into, and what
 * they say: this step's program, workspace mode and limits. Static: only the
 * pages a message touches are ever faulted in. */
struct go {
  char buf[BRIG_MAX_GO_BYTES];
  char *words[BRIG_MAX_GO_WORDS + 1];
  struct {
    char *env[MAX_ITEMS + 1]; int n_env;
    struct rlim rlimits[RLIM_NLIMITS]; int n_rlimits;
    const char *cwd;
    int box_rw, box_mode_given;
    unsigned long long root_bytes, tmp_bytes, wall_ms;
    char **argv;
  } step;
};
static struct go the_go, *go;

/* Faults in, while the sandbox is prepared, the pages of the go message that
 * every step touches: the first page of its bytes and of its words, and what
 * it says. Taken at the go-ahead, these faults were about 60 us of init's
 * work there on a slow day, and since init runs on the runtime's CPU then,
 * the program waited ~40 us more while the runtime got that time back (see
 * the README's Performance section). The pages are charged to the slot's cgroup either way, now before
 * the step's peak is reset rather than after: they are init's, not the
 * program's. A longer message faults in the rest as before. */
static void prefault_go(void) {
  static const size_t page = 4096; /* the smallest page size; touching more often is harmless */
  const struct { volatile char *at; size_t bytes; } parts[] = {
    { go->buf, page },
    { (volatile char *)go->words, page },
    { (volatile char *)&go->step, sizeof go->step },
  };
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    for (size_t at = 0; at < parts[i].bytes; at += page) parts[i].at[at] = 0;
    parts[i].at[parts[i].bytes - 1] = 0;
  }
}

/* What init and the program tell the launcher, over a private pipe. One
 * struct per write, well under PIPE_BUF, so each arrives whole. */
struct report {
  char kind; /* 'R' ready, 'E' error, 'X' exit */
  int err, code, sig;
  long long wall_us, exec_ns, max_rss_kb;
  char text[200];
};

static int report_fd = -1;

static void report_error(const char *stage, int err) {
  struct report r = { .kind = 'E', .err = err };
  snprintf(r.text, sizeof r.text, "%s", stage);
  if (write(report_fd, &r, sizeof r) != sizeof r) { /* nothing left to tell */ }
  _exit(BRIG_EXIT_SETUP);
}

/* Every syscall in setup is checked: a sandbox that is half built must never run. */
#define CHECK(expr, stage) do { if ((expr) < 0) report_error(stage, errno); } while (0)

/* Set in init: its status goes through the report pipe, not fd 5. */
static int in_sandbox;

static void usage(const char *why) {
  if (in_sandbox) report_error(why, EINVAL);
  dprintf(BRIG_FD_STATUS, "error %d argv: %s\n", EINVAL, why);
  _exit(BRIG_EXIT_USAGE);
}

static unsigned long long parse_num(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || !*s) usage("not a number");
  return v;
}

/* Every resource limit the kernel has, by the name the runtime uses. The
 * runtime must set each one (parse_step checks), so nothing the worker's own
 * limits happen to be reaches a program. */
static const struct { const char *name; int resource; } rlimit_names[] = {
  { "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU }, { "data", RLIMIT_DATA },
  { "fsize", RLIMIT_FSIZE }, { "locks", RLIMIT_LOCKS }, { "memlock", RLIMIT_MEMLOCK },
  { "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE }, { "nofile", RLIMIT_NOFILE },
  { "nproc", RLIMIT_NPROC }, { "rss", RLIMIT_RSS }, { "rtprio", RLIMIT_RTPRIO },
  { "rttime", RLIMIT_RTTIME }, { "sigpending", RLIMIT_SIGPENDING }, { "stack", RLIMIT_STACK },
};
_Static_assert(sizeof rlimit_names / sizeof rlimit_names[0] == RLIM_NLIMITS, "every RLIMIT_* of this kernel's headers has a name");

static int rlimit_resource(const char *name) {
  for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
    if (!strcmp(name, rlimit_names[i].name)) return rlimit_names[i].resource;
  usage("unknown rlimit");
  return -1;
}

static rlim_t parse_rlimit_value(const char *s) {
  return strcmp(s, "unlimited") ? (rlim_t)parse_num(s) : RLIM_INFINITY;
}

/* A sandbox path: absolute, and resolved later inside the sandbox's root. */
static const char *sandbox_path(const char *path) {
  if (path[0] != '/') usage("--mask and --ro take absolute paths");
  return path;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (i + 1 >= argc) usage("option without value");
    const char *v = argv[++i];
#define ADD(arr, n) do { if (n >= MAX_ITEMS) usage("too many items"); arr[n++] = v; } while (0)
    if (!strcmp(o, "--map-root")) cfg.map_root = parse_num(v);
    else if (!strcmp(o, "--map-user")) cfg.map_user = parse_num(v);
    else if (!strcmp(o, "--lower")) ADD(cfg.lower, cfg.n_lower);
    else if (!strcmp(o, "--cgroup")) ADD(cfg.cgroups, cfg.n_cgroups);
    else if (!strcmp(o, "--bind-ro")) {
      if (i + 1 >= argc || cfg.n_binds >= MAX_ITEMS) usage("--bind-ro needs SRC DST");
      cfg.binds[cfg.n_binds++] = (struct bind){ v, argv[++i] };
    }
    else if (!strcmp(o, "--mask")) { if (cfg.n_masks >= MAX_PATHS) usage("too many --mask paths"); cfg.masks[cfg.n_masks++] = sandbox_path(v); }
    else if (!strcmp(o, "--ro")) { if (cfg.n_read_only >= MAX_PATHS) usage("too many --ro paths"); cfg.read_only[cfg.n_read_only++] = sandbox_path(v); }
    else if (!strcmp(o, "--oom-score-adj")) cfg.oom_score_adj = v;
    else if (!strcmp(o, "--scratch")) cfg.scratch = v;
    else if (!strcmp(o, "--hostname")) cfg.hostname = v;
    else if (!strcmp(o, "--tmpfs-bytes")) cfg.tmpfs_bytes = parse_num(v);
    else usage("unknown option");
#undef ADD
  }
  /* The program's uid must never be host root, nor the init's: both ids are
   * ordinary unprivileged host ids that the runtime leases per slot. */
  if (!cfg.map_root || !cfg.map_user || cfg.map_root == cfg.map_user) usage("--map-root and --map-user must be distinct non-zero ids");
  if (!cfg.n_lower || !cfg.scratch) usage("--lower and --scratch are required");
  /* Required, never defaulted: without it the host's OOM killer could pick
   * the worker or Redis before a sandbox that is eating the machine's memory. */
  if (!cfg.oom_score_adj) usage("--oom-score-adj is required");
  if (!cfg.tmpfs_bytes) usage("--tmpfs-bytes is required");
  char *end;
  long adj = strtol(cfg.oom_score_adj, &end, 10);
  if (*end || !*cfg.oom_score_adj || adj < OOM_SCORE_ADJ_MIN || adj > OOM_SCORE_ADJ_MAX) usage("--oom-score-adj must be between -1000 and 1000");
}

/* Splits the go message into its NUL-terminated words. */
static int split_go(size_t len) {
  if (!len || go->buf[len - 1]) usage("the go message must be NUL-terminated words");
  int n = 0;
  for (size_t at = 0; at < len; at += strlen(go->buf + at) + 1) {
    if (n >= BRIG_MAX_GO_WORDS) usage("too many words in the go message");
    go->words[n++] = go->buf + at;
  }
  go->words[n] = NULL;
  return n;
}

/* The go message: options, then "--" and the program's absolute path and arguments. */
static void parse_step(size_t len) {
  int n = split_go(len), i = 0;
  for (; i < n; i++) {
    const char *o = go->words[i];
    if (!strcmp(o, "--")) { i++; break; }
    if (i + 1 >= n) usage("option without value");
    const char *v = go->words[++i];
    if (!strcmp(o, "--env")) {
      if (go->step.n_env >= MAX_ITEMS) usage("too many items");
      if (!strchr(v, '=')) usage("--env needs NAME=VALUE");
      go->step.env[go->step.n_env++] = (char *)v;
    } else if (!strcmp(o, "--rlimit")) {
      if (i + 1 >= n || go->step.n_rlimits >= RLIM_NLIMITS) usage("--rlimit needs NAME VALUE, once per limit");
      go->step.rlimits[go->step.n_rlimits++] = (struct rlim){ rlimit_resource(v), parse_rlimit_value(go->words[++i]) };
    }
    else if (!strcmp(o, "--box-mode")) {
      if (strcmp(v, "rw") && strcmp(v, "overlay")) usage("--box-mode is rw or overlay");
      go->step.box_rw = !strcmp(v, "rw");
      go->step.box_mode_given = 1;
    }
    else if (!strcmp(o, "--root-bytes")) go->step.root_bytes = parse_num(v);
    else if (!strcmp(o, "--tmp-bytes")) go->step.tmp_bytes = parse_num(v);
    else if (!strcmp(o, "--wall-ms")) go->step.wall_ms = parse_num(v);
    else if (!strcmp(o, "--cwd")) go->step.cwd = v;
    else usage("unknown option");
  }
  go->step.argv = go->words + i;
  go->step.env[go->step.n_env] = NULL;
  if (!go->step.box_mode_given || !go->step.root_bytes || !go->step.tmp_bytes)
    usage("--box-mode, --root-bytes and --tmp-bytes are required");
  /* Required, never defaulted: a sandbox without its own wall clock would live
   * as long as the runtime's event loop stays stuck. */
  if (!go->step.wall_ms || go->step.wall_ms > MAX_WALL_MS) usage("--wall-ms must be between 1 and a day");
  unsigned set = 0;
  for (int r = 0; r < go->step.n_rlimits; r++) {
    if (set & (1u << go->step.rlimits[r].resource)) usage("an --rlimit is given twice");
    set |= 1u << go->step.rlimits[r].resource;
  }
  if (set != (1u << RLIM_NLIMITS) - 1) usage("every rlimit must be given (--rlimit NAME VALUE for each of the 16)");
  if (!go->step.argv[0] || go->step.argv[0][0] != '/') usage("the program must be an absolute path");
}

static void read_filter(struct sock_fprog *prog) {
  static struct sock_filter filter[MAX_BPF_BYTES / sizeof(struct sock_filter)];
  /* pread, not read: the runtime shares one open file between launchers. */
  ssize_t n = pread(BRIG_FD_SECCOMP, filter, sizeof filter, 0);
  if (n <= 0 || n % sizeof(struct sock_filter) || n == sizeof filter) usage("fd 3 must hold a seccomp filter");
  prog->len = n / sizeof(struct sock_filter);
  prog->filter = filter;
  close(BRIG_FD_SECCOMP);
}

/* Launcher-side failure: tell the runtime and stop. */
static void fail(int err, const char *stage, const char *what) {
  dprintf(BRIG_FD_STATUS, "error %d %s %s: %s\n", err, stage, what, strerror(err));
  _exit(BRIG_EXIT_SETUP);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail(errno, "open", path);
  ssize_t want = strlen(text);
  if (write(fd, text, want) != want) fail(errno, "write", path);
  close(fd);
}

/* ---- inside: mounts --------------------------------------------------- */

static char root[PATH_BYTES];

/* The staging tmpfs at /box: where the workspace goes for an overlay run. */
#define BOX_LOWER "lower"
#define BOX_UPPER "upper"
#define BOX_WORK "work"

static const char *in_root(const char *path, char *buf) {
  if (snprintf(buf, PATH_BYTES, "%s%s", root, path) >= PATH_BYTES) report_error("path too long", ENAMETOOLONG);
  return buf;
}

static void mkdir_p(const char *path) {
  char buf[PATH_BYTES];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) report_error("mkdir mountpoint", errno);
    *p = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST) report_error("mkdir mountpoint", errno);
}

static void touch(const char *path) {
  int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644); /* O_RDONLY: the image may already hold a root-owned file here */
  CHECK(fd, "create mountpoint");
  close(fd);
}

/* A read-only remount of a bind mount inside a user namespace must keep the
 * flags the kernel locked on the source mount (nosuid, nodev, noexec, atime),
 * or mount(2) fails with EPERM. */
static unsigned long locked_flags(const char *src) {
  struct statvfs s;
  CHECK(statvfs(src, &s), "statvfs bind source");
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static void bind_mount(const char *src, const char *dst_in_root, unsigned long flags) {
  char dst[PATH_BYTES];
  struct stat st;
  CHECK(stat(src, &st), "stat bind source");
  in_root(dst_in_root, dst);
  if (S_ISDIR(st.st_mode)) mkdir_p(dst); else touch(dst);
  /* Not MS_REC: submounts of a host path are not ours to expose. */
  CHECK(mount(src, dst, NULL, MS_BIND, NULL), "bind mount");
  CHECK(mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | flags | locked_flags(src), NULL), "remount bind");
}

static void tmpfs(const char *dst, const char *opts, unsigned long flags) {
  mkdir_p(dst);
  CHECK(mount("tmpfs", dst, "tmpfs", flags, opts), "mount tmpfs");
}

static void mount_overlay(const char *lowers, const char *upper, const char *work, const char *dst) {
  char opts[PATH_BYTES * 2];
  if (snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lowers, upper, work) >= (int)sizeof opts)
    report_error("overlay options too long", ENAMETOOLONG);
  CHECK(mount("overlay", dst, "overlay", MS_NOSUID | MS_NODEV, opts), "mount overlay");
}

static void overlay(const char *lowers, const char *upper, const char *work, const char *dst) {
  mkdir_p(upper);
  mkdir_p(work);
  mkdir_p(dst);
  mount_overlay(lowers, upper, work, dst);
}

/* Which paths are masked or read-only is the runtime's policy
 * (runtime/launcher/kernel-view.ts, and the image profile's masks). A path
 * this kernel or image does not have is skipped: there is nothing to hide.
 * Any other failure ends the sandbox. */
static int path_exists(const char *path, struct stat *st) {
  if (stat(path, st) == 0) return 1;
  if (errno == ENOENT || errno == ENOTDIR) return 0;
  char stage[PATH_BYTES];
  snprintf(stage, sizeof stage, "stat %s", path);
  report_error(stage, errno);
  return 0;
}

static void mount_path(const char *src, const char *dst, const char *type, unsigned long flags, const char *opts, const char *what) {
  if (mount(src, dst, type, flags, opts) < 0) {
    char stage[PATH_BYTES];
    snprintf(stage, sizeof stage, "%s %s", what, dst);
    report_error(stage, errno);
  }
}

/* A read-only bind of the path onto itself: readable as before, and no
 * write reaches it even from a process that could otherwise write there. */
static void make_read_only(const char *path) {
  struct stat st;
  if (!path_exists(path, &st)) return;
  mount_path(path, path, NULL, MS_BIND, NULL, "bind read-only path");
  mount_path(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(path), NULL, "remount read-only path");
}

/* The way OCI runtimes mask: a directory gets an empty read-only tmpfs, any
 * other file /dev/null (the sandbox's own bind of the host's), read-only, so
 * reading it gives nothing. The program cannot unmount either: it has no
 * capabilities, and seccomp refuses umount. */
static void mask(const char *path) {
  struct stat st;
  if (!path_exists(path, &st)) return;
  if (S_ISDIR(st.st_mode)) {
    mount_path("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, MASK_TMPFS_OPTS, "mask directory");
    return;
  }
  static unsigned long null_flags = ~0UL; /* the same for every file mask: asked once */
  if (null_flags == ~0UL) null_flags = locked_flags("/dev/null");
  mount_path("/dev/null", path, NULL, MS_BIND, NULL, "mask file");
  mount_path(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | null_flags, NULL, "remount mask read-only");
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  CHECK(s, "socket for loopback");
  struct ifreq ifr = { 0 };
  strcpy(ifr.ifr_name, "lo");
  CHECK(ioctl(s, SIOCGIFFLAGS, &ifr), "get loopback flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  CHECK(ioctl(s, SIOCSIFFLAGS, &ifr), "bring loopback up");
  close(s);
}

/* Builds the sandbox's filesystem as far as it can go before the step is
 * known, and returns an fd on the scratch tmpfs so that go can still size it
 * after pivot_root has detached it. */
static int build_rootfs(void) {
  char a[PATH_BYTES], b[PATH_BYTES], lowers[PATH_BYTES] = "";
  size_t used = 0;

  /* Mounts made from here on must never propagate back to the host. */
  CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");

  /* One capped tmpfs holds the root's writable layer, so whatever the program
   * writes lives in memory and vanishes with this mount namespace. */
  char opts[64];
  snprintf(opts, sizeof opts, "size=%llu,mode=0755", cfg.tmpfs_bytes);
  CHECK(mount("tmpfs", cfg.scratch, "tmpfs", MS_NOSUID | MS_NODEV, opts), "mount scratch tmpfs");
  int scratch_fd = open(cfg.scratch, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  CHECK(scratch_fd, "open scratch tmpfs");
  /* Overlay options show up in /proc/self/mountinfo. Binding every layer
   * into the scratch tmpfs and naming them relative to it keeps host paths
   * (state dir, images) out of what the program can read. */
  CHECK(chdir(cfg.scratch), "chdir scratch");
  snprintf(root, sizeof root, "root");
  for (int i = 0; i < cfg.n_lower; i++) {
    snprintf(a, sizeof a, "l%d", i);
    mkdir_p(a);
    CHECK(mount(cfg.lower[i], a, NULL, MS_BIND, NULL), "bind lower layer");
    used += snprintf(lowers + used, sizeof lowers - used, "%s%s", i ? ":" : "", a);
  }
  overlay(lowers, "upper", "work", root);

  for (int i = 0; i < cfg.n_binds; i++) bind_mount(cfg.binds[i].src, cfg.binds[i].dst, MS_RDONLY | MS_NOSUID | MS_NODEV);

  /* /box is a staging tmpfs until go: the step's workspace then lands on it
   * (read-write), or the overlay over the workspace does (its upper and work
   * dirs live here, under it). Either way the staging is covered. */
  tmpfs(in_root("/box", a), opts, MS_NOSUID | MS_NODEV);
  mkdir_p(in_root("/box/" BOX_LOWER, b));
  mkdir_p(in_root("/box/" BOX_WORK, b));
  mkdir_p(in_root("/box/" BOX_UPPER, b));
  /* The overlay's top directory takes the upper dir's owner: the program's. */
  CHECK(chown(b, BRIG_INNER_UID, BRIG_INNER_GID), "chown box upper");

  snprintf(opts, sizeof opts, "size=%llu,mode=1777", cfg.tmpfs_bytes);
  tmpfs(in_root("/tmp", a), opts, MS_NOSUID | MS_NODEV);

  /* A minimal /dev: no mknod in a user namespace, so the few harmless host
   * devices are bind-mounted onto empty files. */
  tmpfs(in_root("/dev", a), DEV_TMPFS_OPTS, MS_NOSUID | MS_NOEXEC);
  static const char *devices[] = { "null", "zero", "full", "random", "urandom" };
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
    snprintf(b, sizeof b, "/dev/%s", devices[i]);
    bind_mount(b, b, MS_NOSUID | MS_NOEXEC);
  }
  static const char *links[][2] = {
    { "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
    { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) CHECK(symlink(links[i][0], in_root(links[i][1], a)), "dev symlink");
  tmpfs(in_root("/dev/shm", a), opts, MS_NOSUID | MS_NODEV);

  /* We are pid 1 of a new pid namespace, so this /proc shows only the
   * sandbox; hidepid=2 also hides init (inner root) from the program. */
  mkdir_p(in_root("/proc", a));
  CHECK(mount("proc", a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2"), "mount proc");

  /* pivot_root(".", ".") stacks the old root under the new one; detaching it
   * leaves no path back to the host's filesystem. */
  CHECK(chdir(root), "chdir new root");
  CHECK(syscall(SYS_pivot_root, ".", "."), "pivot_root");
  CHECK(umount2(".", MNT_DETACH), "detach old root");
  CHECK(chdir("/"), "chdir /");

  /* After pivot_root, so every path, and every symlink on the way, resolves
   * inside the sandbox and never on the host. Read-only paths first: a mask
   * below one of them then sits on top of its read-only bind. */
  for (int i = 0; i < cfg.n_read_only; i++) make_read_only(cfg.read_only[i]);
  for (int i = 0; i < cfg.n_masks; i++) mask(cfg.masks[i]);
  return scratch_fd;
}

/* ---- inside: go ------------------------------------------------------- */

/* A tmpfs of this sandbox gets the step's size. fspick, not a remount by
 * path: the scratch tmpfs is detached since pivot_root and has no path, and a
 * reconfiguration changes the size alone, never the mount's flags. The
 * sandbox's user namespace owns these tmpfs, so inner root may do it. */
static void resize_tmpfs(int dirfd, const char *path, unsigned long long bytes) {
  if (bytes == cfg.tmpfs_bytes) return; /* made at this size */
  char size[32];
  snprintf(size, sizeof size, "%llu", bytes);
  int fs = syscall(SYS_fspick, dirfd, path, FSPICK_CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT | (*path ? 0 : FSPICK_EMPTY_PATH));
  CHECK(fs, "fspick tmpfs");
  CHECK(syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0), "set tmpfs size");
  CHECK(syscall(SYS_fsconfig, fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0), "resize tmpfs");
  close(fs);
}

/* The runtime sends the go message's length and, with it, the workspace as a
 * detached mount (open_tree in the host's mount namespace, which init can no
 * longer reach); then the message. It is all one sendmsg, so one recvmsg
 * nearly always brings the whole of it: each system call here is on the
 * request's path. EOF instead: the runtime gave up. */
static int receive_go(int sock) {
  uint32_t len;
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov[2] = { { .iov_base = &len, .iov_len = sizeof len }, { .iov_base = go->buf, .iov_len = sizeof go->buf } };
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = control, .msg_controllen = sizeof control };
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (n == 0) _exit(BRIG_EXIT_ABORTED);
  CHECK(n, "receive go");
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC))
    report_error("malformed go message", EPROTO);
  int tree;
  memcpy(&tree, CMSG_DATA(c), sizeof tree);
  /* A stream socket may split anywhere, even inside the length. */
  for (size_t have = n; have < sizeof len;) {
    ssize_t r = read(sock, (char *)&len + have, sizeof len - have);
    if (r == 0) _exit(BRIG_EXIT_ABORTED);
    CHECK(r, "read go");
    have += r;
  }
  size_t got = n > (ssize_t)sizeof len ? n - sizeof len : 0;
  if (len > sizeof go->buf || got > len) report_error("malformed go message", EPROTO);
  while (got < len) {
    ssize_t r = read(sock, go->buf + got, len - got);
    if (r == 0) _exit(BRIG_EXIT_ABORTED);
    CHECK(r, "read go");
    got += r;
  }
  close(sock);
  parse_step(len);
  return tree;
}

/* The workspace: read-write at /box for a compile, or the read-only lower
 * layer of an overlay at /box for a run, so that writes vanish with the
 * sandbox. The moved mount keeps the host mount's nosuid and nodev. */
static void place_box(int tree) {
  if (go->step.box_rw) {
    CHECK(syscall(SYS_move_mount, tree, "", AT_FDCWD, "/box", MOVE_MOUNT_F_EMPTY_PATH), "move workspace to /box");
  } else {
    resize_tmpfs(AT_FDCWD, "/box", go->step.root_bytes);
    CHECK(syscall(SYS_move_mount, tree, "", AT_FDCWD, "/box/" BOX_LOWER, MOVE_MOUNT_F_EMPTY_PATH), "move workspace under /box");
    /* Its directories were made with the staging tmpfs (build_rootfs). */
    mount_overlay("/box/" BOX_LOWER, "/box/" BOX_UPPER, "/box/" BOX_WORK, "/box");
  }
  close(tree);
}

/* ---- inside: the program ---------------------------------------------- */

/* CLOCK_MONOTONIC is the host's own clock (Brig makes no time namespace), the
 * same one Node's process.hrtime reads: the runtime can compare the two. */
static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static long long now_us(void) {
  return now_ns() / NS_PER_US;
}

/* When the program reached execve, written by the program's process just
 * before it; 0 while it has not. The process shares init's memory. */
static volatile long long exec_ns;

/* The program's process is made while the sandbox is prepared, and at the
 * go-ahead only wakes, changes directory and executes: forking it, taking
 * the inner ids and loading the seccomp filter (~0.3 ms together) are off
 * the request's path.
 *
 * It shares init's memory (CLONE_VM, as a vfork child does), for the memory
 * figure's sake: a process with a copy of init's pages would free that copy
 * at execve, after the step's counters were reset, and on cgroup v1 a small
 * program's charges would then fill what was freed without moving the peak.
 * With nothing of its own to free, its execve counts like vfork's did.
 *
 * Its resource limits are the step's, so init sets them with prlimit at the
 * go-ahead: from here on the filter judges the process's own calls, and the
 * default profile refuses some of setrlimit's (RLIMIT_CORE). What it does
 * after the filter is loaded is read, chdir and execve on success, and write
 * and _exit on a failure; profile.ts refuses a profile that does not allow
 * the first three. */
struct program {
  const struct sock_fprog *filter;
  int go_read, go_write;   /* init wakes it with one byte; EOF: init is gone */
  int parked_write;        /* one byte once parked; EOF at its execve or death */
};

static int program_main(void *arg) {
  const struct program *p = arg;
  close(p->go_write);
  CHECK(setsid(), "setsid");
  /* Whatever fd the runtime might have leaked stops at this execve. */
  CHECK(syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), "close_range");
  /* Init emptied the bounding set and set no_new_privs before the clone; the
   * uid change now clears permitted, effective and ambient capabilities. */
  CHECK(setresgid(BRIG_INNER_GID, BRIG_INNER_GID, BRIG_INNER_GID), "setresgid");
  CHECK(setresuid(BRIG_INNER_UID, BRIG_INNER_UID, BRIG_INNER_UID), "setresuid");
  CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p->filter), "load seccomp filter");
  if (write(p->parked_write, "P", 1) != 1) report_error("report parked", errno);
  char byte;
  if (read(p->go_read, &byte, 1) != 1) _exit(BRIG_EXIT_ABORTED);
  /* Init and this process share errno; init sleeps from here until this
   * process's execve or exit, so neither can overwrite the other's. */
  CHECK(chdir(go->step.cwd), "chdir cwd");
  /* The vDSO's clock: no syscall, so the filter need not allow one. */
  exec_ns = now_ns();
  execve(go->step.argv[0], go->step.argv, go->step.env);
  report_error("execve", errno);
  return 0;
}

/* A stack for the program's process until its execve: report_error's
 * snprintf is the deepest it goes. */
#define PROGRAM_STACK_BYTES (64 * 1024)

/* Starts the program's process and waits until it is parked. Returns the
 * pid; *wake and *parked are init's ends of the two pipes. *p must outlive
 * the process's execve: it reads it from init's memory. */
static pid_t start_program(const struct sock_fprog *filter, struct program *p, int *wake, int *parked) {
  int go_pipe[2], parked_pipe[2];
  CHECK(pipe2(go_pipe, O_CLOEXEC), "pipe for the program's go");
  CHECK(pipe2(parked_pipe, O_CLOEXEC), "pipe for the program's state");
  *p = (struct program){ .filter = filter, .go_read = go_pipe[0], .go_write = go_pipe[1], .parked_write = parked_pipe[1] };
  char *stack = mmap(NULL, PROGRAM_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) report_error("mmap program stack", errno);
  pid_t pid = clone(program_main, stack + PROGRAM_STACK_BYTES, CLONE_VM | SIGCHLD, p);
  CHECK(pid, "clone program");
  CHECK(close(go_pipe[0]), "close program's go end");
  CHECK(close(parked_pipe[1]), "close program's state end");
  char byte;
  ssize_t n = read(parked_pipe[0], &byte, 1);
  CHECK(n, "wait for the program to park");
  /* EOF: it failed, and told the launcher why. */
  if (n == 0) _exit(BRIG_EXIT_SETUP);
  *wake = go_pipe[1];
  *parked = parked_pipe[0];
  return pid;
}

/* The program's process died while it waited (killed from outside, or by
 * the OOM killer): nothing of the step ran. Reported like a sandbox killed
 * before its start, without a wall time, so that the runtime builds the step
 * another sandbox rather than report an outcome of a program that never ran. */
static void report_unstarted(pid_t program) {
  int status;
  pid_t pid;
  while ((pid = waitpid(program, &status, 0)) < 0 && errno == EINTR) {}
  CHECK(pid, "reap the program's process");
  struct report r = { .kind = 'X', .code = -1, .sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0, .wall_us = -1, .max_rss_kb = -1 };
  CHECK(write(report_fd, &r, sizeof r), "report exit");
  _exit(0);
}

/* The step's resource limits, set on the parked program. Soft and hard are
 * equal, so the program can only lower them (raising a hard limit takes
 * CAP_SYS_RESOURCE in the host namespace). Why each value:
 * runtime/launcher/rlimits.ts. */
static void limit_program(pid_t program) {
  for (int i = 0; i < go->step.n_rlimits; i++) {
    struct rlimit rl = { go->step.rlimits[i].value, go->step.rlimits[i].value };
    /* RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second later. */
    if (go->step.rlimits[i].resource == RLIMIT_CPU && rl.rlim_cur != RLIM_INFINITY) rl.rlim_max = rl.rlim_cur + 1;
    if (prlimit(program, go->step.rlimits[i].resource, &rl, NULL) < 0) {
      if (errno == ESRCH) report_unstarted(program);
      report_error("setrlimit", errno);
    }
  }
}

/* ---- inside: the wall clock ------------------------------------------- */

/* The runtime keeps a wall timer of its own, but that one lives on Node's
 * event loop: while a long synchronous computation holds the loop, a sandbox
 * could outlive its limit for as long as the loop stays stuck. So init keeps
 * the limit too, on the kernel's clock.
 *
 * Why setitimer and a handler, not timerfd or sigtimedwait: init's reaping
 * loop stays one blocking wait4, and a run costs only two syscalls more
 * (sigaction, setitimer). The kill is done in the handler itself, not through
 * a flag that the loop checks, because a flag set just before wait4 blocks
 * would go unseen until the program exits by itself. SA_RESTART lets the
 * interrupted wait4 carry on and reap the killed program, which then is
 * reported like any other exit: signal 9, wall time at or past the limit
 * (ITIMER_REAL never fires early, and the clock started before the program
 * was woken). */
static void on_wall_limit(int sig) {
  (void)sig;
  int saved_errno = errno; /* the interrupted code may be about to read it */
  /* As pid 1 of the sandbox's pid namespace, kill(-1) reaches every other
   * process in it and none outside. ESRCH: none is left to kill. */
  if (kill(-1, SIGKILL) == 0 || errno == ESRCH) {
    errno = saved_errno;
    return;
  }
  /* Only async-signal-safe calls here (no snprintf in report_error). Init's
   * exit then ends the pid namespace, and every process in it with it. */
  struct report r = { .kind = 'E', .err = errno, .text = "kill at the wall limit" };
  if (write(report_fd, &r, sizeof r) != sizeof r) { /* nothing left to tell */ }
  _exit(BRIG_EXIT_SETUP);
}

/* Armed in init after the clone, so the program inherits neither the handler
 * nor the timer. */
static void arm_wall_limit(void) {
  struct sigaction on_limit = { .sa_handler = on_wall_limit, .sa_flags = SA_RESTART };
  CHECK(sigaction(SIGALRM, &on_limit, NULL), "sigaction SIGALRM");
  struct itimerval limit = { .it_value = {
    .tv_sec = go->step.wall_ms * US_PER_MS / US_PER_S,
    .tv_usec = go->step.wall_ms * US_PER_MS % US_PER_S,
  } };
  CHECK(setitimer(ITIMER_REAL, &limit, NULL), "arm the wall limit");
}

/* Init asks for the shortest time slice the kernel grants (kernel ≥ 6.12,
 * EEVDF custom slices), so that the go-ahead's wake-up preempts whatever the
 * runtime does next. Measured: woken with the default slice, init landed on
 * the runtime's CPU three times out of four after an idle pause and waited
 * ~0.45 ms for the event loop to sleep; with the short one it runs at once.
 * Only init has it: the program was cloned before and keeps the default.
 * A hint, not a limit: older kernels take and ignore it, and where it is
 * refused the sandbox runs all the same, only later. */
#define INIT_SLICE_NS 100000
/* struct sched_attr as of its first version; glibc 2.36 has no wrapper, and
 * <linux/sched/types.h> clashes with <sched.h>. */
struct sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};
static void ask_for_short_slice(void) {
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  if (nice == -1 && errno) return;
  struct sched_attr attr = { .size = sizeof attr, .sched_policy = SCHED_OTHER, .sched_nice = nice, .sched_runtime = INIT_SLICE_NS };
  if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0) { /* see above: the sandbox is sound without it */ }
}

/* Ready goes with the sandbox's mount namespace, for the launcher to hold.
 * Why: the namespace ends with its last reference, and ending it unmounts
 * its ~125 mounts and then waits for an RCU grace period (~0.9 ms). Held by
 * init alone, that wait fell inside init's exit, before init left the cgroup
 * and so before the runtime could account for the run. Held by the launcher,
 * it comes with the launcher's own exit, after the runtime has what it
 * needs. /proc/self is init itself: no ptrace check stands in the way. */
static void send_ready(void) {
  int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  CHECK(ns, "open own mount namespace");
  struct report r = { .kind = 'R' };
  struct iovec iov = { .iov_base = &r, .iov_len = sizeof r };
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control = { 0 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &ns, sizeof ns);
  if (sendmsg(report_fd, &msg, MSG_NOSIGNAL) != sizeof r) report_error("report ready", errno);
  CHECK(close(ns), "close own mount namespace");
}

static void init_main(int sync_fd, int go_sock, const struct sock_fprog *filter) {
  char byte;
  CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
  if (read(sync_fd, &byte, 1) != 1) _exit(BRIG_EXIT_SETUP);

  CHECK(setresgid(0, 0, 0), "become inner root gid");
  CHECK(setresuid(0, 0, 0), "become inner root");
  /* If the launcher dies at any point, the whole sandbox goes with it. A
   * credential change clears the parent-death signal (commit_creds), so it
   * is set again now, and then we check that the launcher did not die in
   * between: it holds the sync pipe's write end until it exits. */
  CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
  struct pollfd launcher_alive = { .fd = sync_fd, .events = POLLIN };
  CHECK(poll(&launcher_alive, 1, 0), "poll sync pipe");
  if (launcher_alive.revents & (POLLHUP | POLLERR)) _exit(BRIG_EXIT_ABORTED);
  close(sync_fd);
  /* The launcher moved us into the run's cgroups; a new cgroup namespace
   * now makes them the root of what the sandbox can see. */
  CHECK(unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
  int scratch_fd = build_rootfs();
  CHECK(sethostname(cfg.hostname, strlen(cfg.hostname)), "sethostname");
  loopback_up();
  go = &the_go;
  prefault_go();
  go->step.cwd = "/box";

  /* For the program, done before its process is made (~40 prctl calls).
   * Init keeps its effective capabilities, which the mounts at the go-ahead
   * need: the bounding set only caps what an execve can gain, and
   * no_new_privs only what an execve can raise, and init never executes
   * anything. The program inherits both across the clone. */
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) CHECK(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop bounding caps");
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
  struct program program_setup;
  int wake, parked;
  pid_t program = start_program(filter, &program_setup, &wake, &parked);

  /* Init keeps no copy of the program's pipes: once the program and its
   * descendants are gone, the runtime sees EOF. */
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  CHECK(devnull, "open /dev/null");
  for (int fd = 0; fd < 3; fd++) CHECK(dup2(devnull, fd), "dup2 /dev/null");

  ask_for_short_slice();
  /* Prepared: from here on only what the step decides is left to do. */
  send_ready();
  int tree = receive_go(go_sock);
  resize_tmpfs(scratch_fd, "", go->step.root_bytes);
  close(scratch_fd);
  resize_tmpfs(AT_FDCWD, "/tmp", go->step.tmp_bytes);
  resize_tmpfs(AT_FDCWD, "/dev/shm", go->step.tmp_bytes);
  place_box(tree);
  limit_program(program);

  long long start_us = now_us();
  /* EPIPE: the program's process is gone (init, as the pid namespace's
   * init, ignores the SIGPIPE). */
  if (write(wake, "G", 1) != 1) {
    if (errno != EPIPE) report_error("wake the program", errno);
    report_unstarted(program);
  }
  /* Sleep until the program's execve or its exit, as a vfork parent would:
   * the two share memory and errno until then. A pipe write wakes the reader
   * as a synchronous wake-up, so the program tends to run on this CPU. */
  CHECK(read(parked, &byte, 1), "wait for the program's execve");
  /* EOF without the exec clock set: it died before its execve, a kill that
   * was on its way when the wake-up went out. */
  if (!exec_ns) report_unstarted(program);
  close(parked);
  close(wake);
  arm_wall_limit();

  /* The cgroup charges memory in per-CPU batches of up to 64 pages, so a
   * small program can live entirely off a batch taken before its start and
   * move the cgroup's peak not at all. The kernel's own count of the largest
   * resident set (wait4's ru_maxrss: the process and every descendant it
   * reaped) gives the runtime a figure that is never zero for a program that
   * ran. Orphans reaped here count too. */
  long long max_rss_kb = 0;
  for (;;) {
    int status;
    struct rusage usage;
    pid_t pid = wait4(-1, &status, 0, &usage);
    if (pid < 0 && errno == EINTR) continue;
    CHECK(pid, "wait4");
    if (usage.ru_maxrss > max_rss_kb) max_rss_kb = usage.ru_maxrss;
    if (pid != program) continue; /* an orphan reparented to us */
    struct report r = (struct report){ .kind = 'X', .wall_us = now_us() - start_us, .code = -1, .exec_ns = exec_ns, .max_rss_kb = max_rss_kb };
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    else r.sig = WTERMSIG(status);
    CHECK(write(report_fd, &r, sizeof r), "report exit");
    /* Returning kills every process left in the pid namespace. */
    _exit(0);
  }
}

/* ---- outside: the launcher -------------------------------------------- */

static volatile pid_t sandbox_init;

/* SIGTERM from the runtime means "stop this sandbox now". We kill init rather
 * than die ourselves: init is our child, so we reap it (no zombie left for a
 * host pid 1 that may not reap) and still report how the program ended. */
static void on_sigterm(int sig) {
  (void)sig;
  if (sandbox_init > 0) kill(sandbox_init, SIGKILL);
}

static void write_id_maps(pid_t child) {
  char path[64], map[128];
  snprintf(map, sizeof map, "0 %lu 1\n%d %lu 1\n", cfg.map_root, BRIG_INNER_UID, cfg.map_user);
  snprintf(path, sizeof path, "/proc/%d/uid_map", child);
  write_file(path, map);
  /* setgroups stays denied so no process inside can ever rejoin a group. */
  snprintf(path, sizeof path, "/proc/%d/setgroups", child);
  write_file(path, "deny");
  snprintf(map, sizeof map, "0 %lu 1\n%d %lu 1\n", cfg.map_root, BRIG_INNER_GID, cfg.map_user);
  snprintf(path, sizeof path, "/proc/%d/gid_map", child);
  write_file(path, map);
}

/* Init and all it starts inherit this: fork copies oom_score_adj and
 * oom_score_adj_min. Written by host root, the value also becomes the
 * minimum (__set_oom_adj pins oom_score_adj_min when the writer holds
 * CAP_SYS_RESOURCE), so nothing in the sandbox can lower it again. Where
 * host root lacks that capability (some containers drop it), the minimum
 * stays the one the worker had. */
static void set_oom_score_adj(pid_t child) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/oom_score_adj", child);
  write_file(path, cfg.oom_score_adj);
}

/*
 * The sandbox's namespaces must belong to the slot's host id, never to root.
 * Kernel rules behind it:
 * - create_user_ns() makes the caller's euid and egid the owner of a new user
 *   namespace; the mount, pid, net, ipc and uts namespaces created by the
 *   same clone belong to that new user namespace.
 * - Per-user counters ("ucounts": inotify instances and watches, user
 *   namespaces, mqueue bytes, pending signals, processes) are charged at
 *   every level up to the host, and a namespace's usage counts, one level
 *   up, against its owner. Owned by root, a sandbox's inotify instances
 *   filled root's fs.inotify.max_user_instances, and root on the host got
 *   EMFILE from inotify_init() for as long as the sandbox held them.
 * So the clone runs with euid and egid set to the slot's root id. The real
 * and saved ids stay 0:
 * - the permitted capabilities survive, so euid 0 can come back (commoncap:
 *   an euid leaving 0 clears the effective set; the permitted set goes only
 *   when real, effective and saved ids all leave 0);
 * - no host process of the slot's id can signal or ptrace the launcher
 *   meanwhile: both check the target's real or saved id.
 * The slot's root id must never run a process in the host's own user
 * namespace: as the owner, it would hold every capability over the sandbox.
 */
static void become_slot_owner(void) {
  /* egid first: once euid is not 0, CAP_SETGID is no longer effective. */
  if (setresgid(-1, cfg.map_root, 0) < 0) fail(errno, "setresgid", "egid to the slot's root id");
  if (setresuid(-1, cfg.map_root, 0) < 0) fail(errno, "setresuid", "euid to the slot's root id");
}

/*
 * Back to euid 0 at once, because the rest is host root's alone:
 * - an id map of more than the writer's own single id needs CAP_SETUID (or
 *   CAP_SETGID) over the parent namespace, held by the writer and by whoever
 *   opened the map file (new_idmap_permitted);
 * - an euid change makes a process non-dumpable (commit_creds applies
 *   suid_dumpable), and init, cloned meanwhile, copied that flag: its /proc
 *   files, uid_map, gid_map and setgroups among them, now belong to root;
 * - cgroup.procs is root's file, and only a writer with CAP_SYS_RESOURCE
 *   pins oom_score_adj_min.
 * The same euid change cleared our parent-death signal (commit_creds): arm it
 * again, then make sure the runtime did not die in between.
 */
static void become_root_again(pid_t runtime, pid_t child) {
  if (setresuid(-1, 0, -1) < 0 || setresgid(-1, 0, -1) < 0) {
    int err = errno;
    if (child > 0) kill(child, SIGKILL);
    fail(err, "setresuid", "back to euid 0");
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
    int err = errno;
    if (child > 0) kill(child, SIGKILL);
    fail(err, "prctl", "pdeathsig");
  }
  if (getppid() != runtime) {
    if (child > 0) kill(child, SIGKILL);
    _exit(BRIG_EXIT_ABORTED);
  }
}

/*
 * On cgroup v2 the sandbox's init is born in its cgroup: clone3 with
 * CLONE_INTO_CGROUP (Linux 5.7). Moving a process later, by writing
 * cgroup.procs, takes cgroup_threadgroup_rwsem for writing, which waits for
 * an RCU grace period (~11 ms measured) whenever no migration happened on the
 * machine for a while: on an idle server, every sandbox paid it. A fork into
 * a cgroup takes only the read side. v1 has no such clone: an fd of a v1
 * hierarchy gets EBADF, so only a single cgroup2 directory qualifies.
 */
static int cgroup2_dir(void) {
  struct statfs fs;
  if (cfg.n_cgroups != 1) return -1;
  int fd = open(cfg.cgroups[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(errno, "open", cfg.cgroups[0]);
  if (fstatfs(fd, &fs) < 0) fail(errno, "statfs", cfg.cgroups[0]);
  if (fs.f_type == CGROUP2_SUPER_MAGIC) return fd;
  close(fd);
  return -1;
}

/*
 * With euid the slot's id, the clone has no effective capability, and
 * CLONE_INTO_CGROUP checks, as a write to cgroup.procs would, that the caller
 * may write the cgroup.procs of the destination and of the common ancestor
 * (root's files). The permitted set is still whole (real and saved ids are
 * 0), so the effective set is raised to it for the clone; the new user
 * namespace's owner is the euid all the same.
 */
static int raise_effective_caps(void) {
  struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, data) < 0) return -1;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) data[i].effective = data[i].permitted;
  return syscall(SYS_capset, &header, data);
}

#define SANDBOX_NAMESPACES (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* A raw clone without a stack behaves like fork. Sets *placed when the child
 * was born in its cgroup. The cgroup namespace is unshared later, by init,
 * once it is in its cgroups. */
static pid_t clone_sandbox(int cgroup_fd, int *placed) {
  *placed = 0;
  if (cgroup_fd >= 0 && raise_effective_caps() == 0) {
    struct clone_args args = { .flags = SANDBOX_NAMESPACES | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = cgroup_fd };
    pid_t pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0) {
      *placed = 1;
      return pid;
    }
    /* ENOSYS or E2BIG before 5.7, or a kernel that refuses: the write below. */
  }
  return syscall(SYS_clone, SANDBOX_NAMESPACES | SIGCHLD, NULL, NULL, NULL, NULL);
}

static void join_cgroups(pid_t child) {
  char path[PATH_BYTES], pid[32];
  snprintf(pid, sizeof pid, "%d", child);
  for (int i = 0; i < cfg.n_cgroups; i++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", cfg.cgroups[i]);
    write_file(path, pid);
  }
}

/* Waits for the runtime's go message on fd 4 while watching init. The
 * message is its length (4 bytes, little-endian) and then its words, so it
 * needs no EOF: closing a pipe can lag behind the write in the runtime's event
 * loop. Returns the words' length; 0 when fd 4 closed before a message began
 * (the runtime gave up on this sandbox); -1 when init spoke or died first. */
/* Relays init's reports as status lines until one ends the sandbox. Returns
 * the launcher's exit code, or -1 after "ready" (the caller waits for go). */
static int relay(int report, pid_t child) {
  struct report r;
  for (;;) {
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
    struct iovec iov = { .iov_base = &r, .iov_len = sizeof r };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    ssize_t n = recvmsg(report, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof r) break;
    r.text[sizeof r.text - 1] = 0;
    if (r.kind == 'R') {
      /* The mount namespace that came with it is now an fd of ours, left
       * open and unused until this process exits: see send_ready(). */
      dprintf(BRIG_FD_STATUS, "ready %d\n", child);
      return -1;
    }
    if (r.kind == 'E') {
      dprintf(BRIG_FD_STATUS, "error %d %s: %s\n", r.err, r.text, strerror(r.err));
      return BRIG_EXIT_SETUP;
    }
    if (r.kind == 'X') {
      dprintf(BRIG_FD_STATUS, "exit %d %d %lld %lld %lld\n", r.code, r.sig, r.wall_us, r.exec_ns ? r.exec_ns : -1, r.max_rss_kb);
      return BRIG_EXIT_OK;
    }
  }
  return BRIG_EXIT_ABORTED;
}

int main(int argc, char **argv) {
  struct sock_fprog filter;
  int sync_pipe[2], report_pair[2];

  /* The runtime dying must take every sandbox with it. */
  pid_t runtime = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) fail(errno, "prctl", "pdeathsig");
  parse_args(argc, argv);
  read_filter(&filter);

  /* Root's supplementary groups would follow the child into the sandbox
   * (unmapped, but still honoured by permission checks on host files). */
  if (setgroups(0, NULL) < 0) fail(errno, "setgroups", "drop");
  if (pipe2(sync_pipe, O_CLOEXEC) < 0) fail(errno, "pipe", "create");
  /* Reports are messages, and ready carries an fd: a seqpacket socket pair. */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report_pair) < 0) fail(errno, "socketpair", "create");
  int cgroup_fd = cgroup2_dir();

  become_slot_owner();
  int placed;
  pid_t child = clone_sandbox(cgroup_fd, &placed);
  int clone_errno = errno;
  if (child == 0) {
    close(BRIG_FD_STATUS);
    close(sync_pipe[1]);
    close(report_pair[0]);
    if (cgroup_fd >= 0) close(cgroup_fd);
    report_fd = report_pair[1];
    in_sandbox = 1;
    init_main(sync_pipe[0], BRIG_FD_GO, &filter);
    _exit(BRIG_EXIT_SETUP);
  }

  become_root_again(runtime, child);
  if (child < 0) fail(clone_errno, "clone", "namespaces");
  sandbox_init = child;
  struct sigaction stop = { .sa_handler = on_sigterm, .sa_flags = SA_RESTART };
  if (sigaction(SIGTERM, &stop, NULL) < 0) { kill(child, SIGKILL); fail(errno, "sigaction", "SIGTERM"); }
  close(sync_pipe[0]);
  close(report_pair[1]);
  /* The go socket is init's alone: the runtime's message and its closing
   * reach init without waking us. */
  close(BRIG_FD_GO);
  if (cgroup_fd >= 0) close(cgroup_fd);
  /* Hold no copy of the program's stdio: the runtime waits for their EOF. */
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) fail(errno, "open", "/dev/null");
  for (int fd = 0; fd < 3; fd++) dup2(devnull, fd);

  write_id_maps(child);
  if (!placed) join_cgroups(child);
  set_oom_score_adj(child);
  /* The write end stays open until we exit: init watches it for our death. */
  if (write(sync_pipe[1], "M", 1) != 1) fail(errno, "write", "sync pipe");

  int code = relay(report_pair[0], child);
  if (code < 0) code = relay(report_pair[0], child); /* ready: now the step's end */
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  /* Init killed from outside (the OOM killer, say) before it could report. */
  if (code == BRIG_EXIT_ABORTED && WIFSIGNALED(status)) {
    dprintf(BRIG_FD_STATUS, "exit -1 %d -1 -1 -1\n", WTERMSIG(status));
    code = BRIG_EXIT_OK;
  }
  /* Init is reaped, and every other process of the sandbox went before it
   * (a pid namespace's init finishes exiting only once the rest have). EOF
   * on the status fd tells the runtime so now, not after our own exit, which
   * ends the sandbox's mount namespace (see send_ready()). */
  close(BRIG_FD_STATUS);
  return code;
}
