/*
 * counters: takes as much of a per-user kernel counter as the kernel gives,
 * across several processes, and holds it for a while, so a test can look at
 * the host meanwhile. Prints one "what: result" line per finding.
 *
 * stdin: "inotify HOGS HOLD_MS"
 *   HOGS processes each open inotify instances until inotify_init1 fails
 *   (EMFILE: the per-user instance count, or RLIMIT_NOFILE), report how many
 *   they got and why they stopped, and hold them; the parent prints the
 *   total, "holding", sleeps HOLD_MS, and then lets them all go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOGS 64
#define MAX_INSTANCES_PER_HOG 100000

struct tally { int instances, err; };

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E?";
}

static void hog(int report_fd) {
  struct tally t = { 0, 0 };
  while (t.instances < MAX_INSTANCES_PER_HOG) {
    if (inotify_init1(IN_CLOEXEC) < 0) { t.err = errno; break; }
    t.instances++;
  }
  if (write(report_fd, &t, sizeof t) != sizeof t) _exit(1);
  for (;;) pause(); /* hold them until killed */
}

static int inotify_hogs(int hogs, long hold_ms) {
  if (hogs < 1 || hogs > MAX_HOGS) { printf("usage: 1 to %d hogs\n", MAX_HOGS); return 2; }
  int fds[2];
  if (pipe(fds) < 0) { printf("pipe: %s\n", errname(errno)); return 1; }
  pid_t pids[MAX_HOGS];
  for (int i = 0; i < hogs; i++) {
    pids[i] = fork();
    if (pids[i] < 0) { printf("fork hog %d: %s\n", i, errname(errno)); return 1; }
    if (pids[i] == 0) { close(fds[0]); hog(fds[1]); }
  }
  close(fds[1]);
  int total = 0;
  for (int i = 0; i < hogs; i++) {
    struct tally t;
    if (read(fds[0], &t, sizeof t) != sizeof t) { printf("hog report: %s\n", errname(errno)); return 1; }
    printf("hog: %d instances, then %s\n", t.instances, t.err ? errname(t.err) : "no failure");
    total += t.instances;
  }
  printf("inotify instances: %d\n", total);
  printf("holding: %ld ms\n", hold_ms);
  fflush(stdout);
  struct timespec hold = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
  nanosleep(&hold, NULL);
  for (int i = 0; i < hogs; i++) kill(pids[i], SIGKILL);
  for (int i = 0; i < hogs; i++) waitpid(pids[i], NULL, 0);
  /* The hogs' instances went with them: the count is ours again. */
  int fd = inotify_init1(IN_CLOEXEC);
  printf("inotify_init after release: %s\n", fd < 0 ? errname(errno) : "ok");
  printf("done\n");
  return 0;
}

int main(void) {
  char mode[32] = "";
  int hogs = 0;
  long hold_ms = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (scanf("%31s %d %ld", mode, &hogs, &hold_ms) != 3) { printf("usage: MODE HOGS HOLD_MS on stdin\n"); return 2; }
  if (!strcmp(mode, "inotify")) return inotify_hogs(hogs, hold_ms);
  printf("unknown mode %s\n", mode);
  return 2;
}
