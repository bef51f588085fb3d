/*
 * persist: leaves marks everywhere a program can write, then, in a later
 * run, looks for them. Every write must vanish with the sandbox that made
 * it; only the compile step's output is shared by the runs of one job.
 *
 * stdin: "write TAG"  write TAG to every path below, tamper with the
 *                     submission (append to main.c, replace the binary)
 *        "check"      report what each path holds now
 * Output: one "what: result" line per path, result "ok <content>" or the
 * errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *marks[] = {
  "/box/new.txt", "/box/sub/deep.txt", "/tmp/x", "/dev/shm/x", "/etc/x", "/x",
};
#define N_MARKS (sizeof marks / sizeof marks[0])
#define TAMPERED_BINARY "#!/bin/sh\necho tampered\n"

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "E?";
}

static void write_mark(const char *path, const char *tag) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) { printf("write %s: %s\n", path, errname(errno)); return; }
  ssize_t n = write(fd, tag, strlen(tag));
  printf("write %s: %s\n", path, n < 0 ? errname(errno) : "ok");
  close(fd);
}

static void check_mark(const char *path) {
  char buf[128] = "";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { printf("read %s: %s\n", path, errname(errno)); return; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  close(fd);
  printf("read %s: ok %s\n", path, buf);
}

static void report_size(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) printf("stat %s: %s\n", path, errname(errno));
  else printf("stat %s: ok (%lld bytes, mode %o)\n", path, (long long)st.st_size, st.st_mode & 07777);
}

int main(void) {
  char mode[16] = "", tag[64] = "";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (scanf("%15s %63s", mode, tag) < 1) { printf("usage: write TAG | check\n"); return 2; }
  report_size("/box/main");
  report_size("/box/main.c");
  if (!strcmp(mode, "write")) {
    printf("mkdir /box/sub: %s\n", mkdir("/box/sub", 0755) < 0 ? errname(errno) : "ok");
    for (size_t i = 0; i < N_MARKS; i++) write_mark(marks[i], tag);
    int fd = open("/box/main.c", O_WRONLY | O_APPEND | O_CLOEXEC);
    printf("append /box/main.c: %s\n", fd < 0 || write(fd, "garbage", 7) < 0 ? errname(errno) : "ok");
    if (fd >= 0) close(fd);
    /* Replace our own binary: if this reached the workspace, the next run would print "tampered". */
    printf("unlink /box/main: %s\n", unlink("/box/main") < 0 ? errname(errno) : "ok");
    write_mark("/box/main", TAMPERED_BINARY);
    printf("chmod /box/main: %s\n", chmod("/box/main", 0755) < 0 ? errname(errno) : "ok");
    return 0;
  }
  if (!strcmp(mode, "check")) {
    for (size_t i = 0; i < N_MARKS; i++) check_mark(marks[i]);
    return 0;
  }
  printf("unknown mode %s\n", mode);
  return 2;
}
