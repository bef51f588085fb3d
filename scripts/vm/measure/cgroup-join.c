/*
 * What placing a new process into its cgroup costs on cgroup v2 (issue 11),
 * measured in the test:vm guest by scripts/vm/measure/cgroup-join.sh:
 *
 *   clone3    clone3(CLONE_INTO_CGROUP): the child is born in the cgroup
 *             (what the launcher does on v2)
 *   write     clone, then the parent writes the child's pid to cgroup.procs
 *             (the launcher's fallback, and all it can do on v1)
 *   fork      clone alone, into the parent's own cgroup: the floor
 *
 * Each sample is the time from the clone call to the child being in its
 * cgroup (clone3: the call's return; write: the write's return), after the
 * machine saw no cgroup migration for --idle-ms: a migration takes
 * cgroup_threadgroup_rwsem for writing, and once its RCU fast path has gone
 * back to idle, the next writer waits for a grace period.
 *
 * Usage: cgroup-join CGROUP_DIR SAMPLES IDLE_MS. Prints one line per mode:
 * "<mode> idle=<ms> n=<n> median_us=<us> p90_us=<us> max_us=<us>".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 1000
#define NS_PER_US 1000
#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void idle(long ms) {
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * NS_PER_MS };
  nanosleep(&ts, NULL);
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* The child of every mode waits for its parent to let it go, so that it is
 * alive (and placed) when the parent stops the clock. */
static long long one(const char *mode, int cgroup_fd, const char *procs) {
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) < 0) die("pipe2");
  long long start = now_ns(), placed;
  pid_t pid;
  if (!strcmp(mode, "clone3")) {
    struct clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = cgroup_fd };
    pid = syscall(SYS_clone3, &args, sizeof args);
  } else {
    pid = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
  }
  if (pid < 0) die("clone");
  if (pid == 0) {
    char byte;
    close(gate[1]);
    if (read(gate[0], &byte, 1) < 0) _exit(1);
    _exit(0);
  }
  if (!strcmp(mode, "write")) {
    char text[32];
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open cgroup.procs");
    int len = snprintf(text, sizeof text, "%d", pid);
    if (write(fd, text, len) != len) die("write cgroup.procs");
    close(fd);
  }
  placed = now_ns();
  close(gate[0]);
  close(gate[1]);
  int status;
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  return placed - start;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CGROUP_DIR SAMPLES IDLE_MS\n", argv[0]);
    return 2;
  }
  int samples = atoi(argv[2]);
  long idle_ms = atol(argv[3]);
  if (samples < 1 || samples > MAX_SAMPLES) samples = MAX_SAMPLES;
  char procs[4096];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[1]);
  int cgroup_fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_fd < 0) die("open cgroup");
  static const char *modes[] = { "fork", "clone3", "write" };
  static long long ns[MAX_SAMPLES];
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    for (int i = 0; i < samples; i++) {
      idle(idle_ms);
      ns[i] = one(modes[m], cgroup_fd, procs);
    }
    qsort(ns, samples, sizeof ns[0], cmp);
    printf("%s idle=%ld n=%d median_us=%lld p90_us=%lld max_us=%lld\n", modes[m], idle_ms, samples, ns[samples / 2] / NS_PER_US,
           ns[samples * 9 / 10] / NS_PER_US, ns[samples - 1] / NS_PER_US);
  }
  return 0;
}
