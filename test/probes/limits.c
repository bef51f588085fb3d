/*
 * limits: one probe binary that runs into one resource limit per run, chosen
 * by the first word on stdin (like crun's tests/init.c). It prints what it
 * tried and what happened, one "what: result" line each, so the test can
 * assert on the program's own view as well as on the runtime's verdict.
 *
 *   memhog-fast      allocate and touch 200 MB at once
 *   memhog-slow      grow by 1 MB every 5 ms up to 200 MB
 *   forkbomb         count forks until EAGAIN, then fork forever
 *   cpuburn          spin in one process
 *   cpuburn-forks    spin in 4 forked processes
 *   cpuburn-threads  spin in 4 threads
 *   sleep            sleep forever
 *   orphan           fork a child that sleeps 30 s, exit at once
 *   flood            print forever on stdout
 *   flood-stderr     print forever on stderr
 *   fill-disk        write /tmp, /box and /dev/shm until ENOSPC
 *   fsize            write one file past RLIMIT_FSIZE with SIGXFSZ ignored
 *   fsize-signal     the same with SIGXFSZ at its default action
 *   many-files       create empty files in /tmp until something stops it
 *   fill-pipes       fill as many pipes as RLIMIT_NOFILE allows, never read
 *   fill-unix        the same with unix socket pairs
 *   fill-tcp         the same with loopback TCP connections
 * The fill-* modes hold data in kernel buffers, not in the program's own
 * memory: the memory limit must count it all the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MB (1024L * 1024L)
#define HOG_MB 200
#define SLOW_STEP_SLEEP_NS 5000000L
#define BURNERS 4
#define FORK_COUNT_MAX 1024
#define ORPHAN_SLEEP_S 30
#define FILL_FILE_MB 4
#define PIPE_BYTES (1 << 20)
#define HOLD_US 300000
#define FILES_REPORT_EVERY 100000

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E?";
}

static void burn(void) {
  volatile unsigned long spin = 0;
  for (;;) spin++;
}

static void *burn_thread(void *arg) {
  (void)arg;
  burn();
  return NULL;
}

static void touch_pages(char *p, long bytes) {
  for (long i = 0; i < bytes; i += 4096) p[i] = 1;
}

static int memhog_fast(void) {
  char *p = malloc(HOG_MB * MB);
  if (!p) { printf("malloc %d MB: %s\n", HOG_MB, errname(errno)); return 1; }
  touch_pages(p, HOG_MB * MB);
  printf("touched %d MB: survived\n", HOG_MB);
  return 0;
}

static int memhog_slow(void) {
  struct timespec step = { 0, SLOW_STEP_SLEEP_NS };
  for (int mb = 1; mb <= HOG_MB; mb++) {
    char *p = malloc(MB);
    if (!p) { printf("malloc at %d MB: %s\n", mb, errname(errno)); return 1; }
    touch_pages(p, MB);
    if (mb % 16 == 0) { printf("grown to %d MB\n", mb); fflush(stdout); }
    nanosleep(&step, NULL);
  }
  printf("grew to %d MB: survived\n", HOG_MB);
  return 0;
}

static int forkbomb(void) {
  /* First measure the pids limit with children that just wait to be killed. */
  pid_t kids[FORK_COUNT_MAX];
  int n = 0, err = 0;
  while (n < FORK_COUNT_MAX) {
    pid_t pid = fork();
    if (pid < 0) { err = errno; break; }
    if (pid == 0) { pause(); _exit(0); }
    kids[n++] = pid;
  }
  printf("forks before failure: %d (%s)\n", n, err ? errname(err) : "no failure");
  fflush(stdout);
  for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
  printf("forkbomb: starting\n");
  fflush(stdout);
  /* Then the real thing: every process forks forever. */
  for (;;) fork();
}

static int burn_in_forks(void) {
  for (int i = 0; i < BURNERS; i++) {
    pid_t pid = fork();
    if (pid < 0) { printf("fork burner %d: %s\n", i, errname(errno)); return 1; }
    if (pid == 0) burn();
  }
  printf("forked %d burners\n", BURNERS);
  fflush(stdout);
  while (wait(NULL) > 0) {}
  return 0;
}

static int burn_in_threads(void) {
  pthread_t t;
  for (int i = 0; i < BURNERS; i++) {
    int err = pthread_create(&t, NULL, burn_thread, NULL);
    if (err) { printf("pthread_create %d: %s\n", i, errname(err)); return 1; }
  }
  printf("started %d burner threads\n", BURNERS);
  fflush(stdout);
  pthread_join(t, NULL);
  return 0;
}

static int orphan(void) {
  pid_t pid = fork();
  if (pid < 0) { printf("fork orphan: %s\n", errname(errno)); return 1; }
  if (pid == 0) {
    /* Keeps stdout open: if it outlived the sandbox, the run could not end. */
    sleep(ORPHAN_SLEEP_S);
    printf("orphan: still alive after %d s\n", ORPHAN_SLEEP_S);
    return 0;
  }
  printf("parent: forked orphan pid %d, exiting\n", pid);
  return 0;
}

static int flood(int fd) {
  static const char line[] = "flood flood flood flood flood flood flood flood flood flood\n";
  for (;;) {
    if (write(fd, line, sizeof line - 1) < 0) return 1;
  }
}

/* Writes FILL_FILE_MB files into dir until a write fails; prints the errno. */
static void fill(const char *dir) {
  static char chunk[MB];
  memset(chunk, 'x', sizeof chunk);
  long written = 0;
  for (int file = 0;; file++) {
    char path[256];
    snprintf(path, sizeof path, "%s/fill-%d", dir, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { printf("fill %s: %s after %ld MB\n", dir, errname(errno), written / MB); return; }
    for (int i = 0; i < FILL_FILE_MB; i++) {
      ssize_t n = write(fd, chunk, sizeof chunk);
      if (n > 0) written += n;
      if (n == (ssize_t)sizeof chunk) continue;
      int err = n < 0 ? errno : ENOSPC; /* a short write means the disk is full */
      if (n >= 0 && write(fd, chunk, sizeof chunk) < 0) err = errno;
      printf("fill %s: %s after %ld MB\n", dir, errname(err), written / MB);
      close(fd);
      return;
    }
    close(fd);
  }
}

static int fill_disk(void) {
  signal(SIGXFSZ, SIG_IGN);
  fill("/tmp");
  fill("/box");
  fill("/dev/shm");
  return 0;
}

static int fsize(int ignore_signal) {
  static char chunk[MB];
  if (ignore_signal) signal(SIGXFSZ, SIG_IGN);
  int fd = open("/tmp/big", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { printf("open /tmp/big: %s\n", errname(errno)); return 1; }
  long written = 0;
  for (;;) {
    ssize_t n = write(fd, chunk, sizeof chunk);
    if (n < 0) { printf("write /tmp/big: %s after %ld bytes\n", errname(errno), written); return 0; }
    written += n;
    if (written > 1024 * MB) { printf("write /tmp/big: no limit after %ld bytes\n", written); return 1; }
  }
}

static int many_files(void) {
  char path[64];
  for (long n = 0;; n++) {
    snprintf(path, sizeof path, "/tmp/%ld", n);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) { printf("many-files: %s after %ld files\n", errname(errno), n); return 0; }
    close(fd);
    if (n % FILES_REPORT_EVERY == 0) printf("many-files: %ld files\n", n);
  }
}

/* Writes to fd without blocking until the kernel will take no more. */
static long long stuff(int fd) {
  static char chunk[1 << 16];
  long long total = 0;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  for (;;) {
    ssize_t n = write(fd, chunk, sizeof chunk);
    if (n <= 0) return total;
    total += n;
  }
}

/* One connected pair per iteration until the fd limit; returns 0 or the errno that ended it. */
static int tcp_pair(int listener, const struct sockaddr_in *addr, int fds[2]) {
  fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fds[0] < 0) return errno;
  if (connect(fds[0], (const struct sockaddr *)addr, sizeof *addr) < 0) { int err = errno; close(fds[0]); return err; }
  fds[1] = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (fds[1] < 0) { int err = errno; close(fds[0]); return err; }
  return 0;
}

static int fill_buffers(const char *kind) {
  int listener = -1;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (!strcmp(kind, "tcp")) {
    socklen_t len = sizeof addr;
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, SOMAXCONN) < 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
      printf("fill-tcp listen: %s\n", errname(errno));
      return 1;
    }
  }
  long long total = 0;
  int pairs = 0, err = 0;
  for (;;) {
    int fds[2];
    if (!strcmp(kind, "pipes")) err = pipe2(fds, O_CLOEXEC) < 0 ? errno : 0;
    else if (!strcmp(kind, "unix")) err = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? errno : 0;
    else err = tcp_pair(listener, &addr, fds);
    if (err) break;
    pairs++;
    if (!strcmp(kind, "pipes")) {
      fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES);
      total += stuff(fds[1]);
    } else {
      total += stuff(fds[0]) + stuff(fds[1]); /* both directions: send and receive queues */
    }
    if (pairs % 8 == 0) { printf("fill-%s: %lld MB queued\n", kind, total / MB); }
  }
  printf("fill-%s: queued %lld MB in %d pairs until %s\n", kind, total / MB, pairs, errname(err));
  usleep(HOLD_US); /* hold it while the runtime samples the cgroup */
  return 0;
}

int main(void) {
  char mode[64] = "";
  if (scanf("%63s", mode) != 1) { printf("usage: mode on stdin\n"); return 2; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(mode, "memhog-fast")) return memhog_fast();
  if (!strcmp(mode, "memhog-slow")) return memhog_slow();
  if (!strcmp(mode, "forkbomb")) return forkbomb();
  if (!strcmp(mode, "cpuburn")) burn();
  if (!strcmp(mode, "cpuburn-forks")) return burn_in_forks();
  if (!strcmp(mode, "cpuburn-threads")) return burn_in_threads();
  if (!strcmp(mode, "sleep")) for (;;) pause();
  if (!strcmp(mode, "orphan")) return orphan();
  if (!strcmp(mode, "flood")) return flood(STDOUT_FILENO);
  if (!strcmp(mode, "flood-stderr")) return flood(STDERR_FILENO);
  if (!strcmp(mode, "fill-disk")) return fill_disk();
  if (!strcmp(mode, "fsize")) return fsize(1);
  if (!strcmp(mode, "fsize-signal")) return fsize(0);
  if (!strcmp(mode, "many-files")) return many_files();
  if (!strcmp(mode, "fill-pipes")) return fill_buffers("pipes");
  if (!strcmp(mode, "fill-unix")) return fill_buffers("unix");
  if (!strcmp(mode, "fill-tcp")) return fill_buffers("tcp");
  printf("unknown mode %s\n", mode);
  return 2;
}
