/*
 * crash: a child that dies of a core-dumping signal, watched by its parent,
 * which prints what the kernel did about a core dump. "what: result" lines.
 *
 * stdin: "crash SIGNAL" or "crash-core-0 SIGNAL", SIGNAL one of segv, abrt
 *   crash         the child crashes with the limits it was given
 *   crash-core-0  the child first lowers its own RLIMIT_CORE to 0, which any
 *                 process may do, and then crashes
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E?";
}

static void die_of(int sig) {
  if (sig == SIGSEGV) *(volatile int *)0 = 1;
  if (sig == SIGABRT) abort();
  raise(sig);
  _exit(99);
}

/* "core files in DIR: none" or their names. */
static void core_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) { printf("core files in %s: %s\n", dir, errname(errno)); return; }
  printf("core files in %s:", dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, "core", 4)) continue;
    printf(" %s", e->d_name);
    n++;
  }
  printf("%s\n", n ? "" : " none");
  closedir(d);
}

int main(void) {
  char mode[32] = "", name[16] = "";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (scanf("%31s %15s", mode, name) != 2) { printf("usage: MODE SIGNAL on stdin\n"); return 2; }
  int sig = !strcmp(name, "segv") ? SIGSEGV : !strcmp(name, "abrt") ? SIGABRT : 0;
  int lower = !strcmp(mode, "crash-core-0");
  if (!sig || (!lower && strcmp(mode, "crash"))) { printf("unknown mode %s %s\n", mode, name); return 2; }

  struct rlimit rl;
  getrlimit(RLIMIT_CORE, &rl);
  printf("RLIMIT_CORE: %llu %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  pid_t child = fork();
  if (child < 0) { printf("fork: %s\n", errname(errno)); return 1; }
  if (child == 0) {
    if (lower) {
      struct rlimit zero = { 0, 0 };
      printf("lower RLIMIT_CORE to 0: %s\n", setrlimit(RLIMIT_CORE, &zero) < 0 ? errname(errno) : "ok");
    }
    die_of(sig);
  }
  int status;
  if (waitpid(child, &status, 0) < 0) { printf("waitpid: %s\n", errname(errno)); return 1; }
  if (WIFSIGNALED(status)) printf("child: signal %d, core dumped %s\n", WTERMSIG(status), WCOREDUMP(status) ? "yes" : "no");
  else printf("child: exit %d\n", WEXITSTATUS(status));
  core_files(".");
  core_files("/tmp");
  printf("done\n");
  return 0;
}
