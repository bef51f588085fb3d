/*
 * The wire protocol between the TypeScript runtime and brig-launcher.
 * runtime/launcher/protocol.ts mirrors every constant here, and
 * test/unit/runtime/launcher/protocol.test.ts checks that they match.
 *
 * A sandbox is built in two phases, so that it can be prepared before the
 * request it will serve arrives (a warm slot, runtime/slots/warm.ts):
 *   prepare  argv says what every sandbox of the slot shares: id maps, image
 *            layers, masks, cgroups. The launcher builds the sandbox up to its
 *            go-ahead and reports "ready".
 *   go       the runtime sends the go message on fd 4, which only the
 *            sandbox's init holds (the launcher closes its copy), and closes
 *            it: the step's program, workspace and limits. The sandbox runs
 *            it once, and is never used again.
 *
 * File descriptors the runtime hands to the launcher:
 *   0,1,2  the program's stdin, stdout and stderr (pipes)
 *   3      the seccomp filter: a regular file holding struct sock_filter[]
 *   4      go: a unix stream socket for the go message, read by init. EOF
 *          before one aborts the sandbox before anything runs.
 *   5      status: the launcher writes text lines, one event each
 *
 * argv: options only ("--map-root", "--map-user", "--scratch", "--lower",
 * "--bind-ro", "--ro", "--mask", "--cgroup", "--oom-score-adj",
 * "--tmpfs-bytes", "--hostname"); runtime/launcher/args.ts builds it and launcher.c
 * parse_args() reads it. "--mask PATH" and "--ro PATH" name paths inside the
 * sandbox, applied after pivot_root.
 *
 * The go message: its length in bytes (4 bytes, little-endian), sent with the
 * workspace as one file descriptor (SCM_RIGHTS): a detached copy of its host
 * mount (open_tree OPEN_TREE_CLONE), which init moves to /box. Then that
 * many bytes of NUL-terminated words, at most BRIG_MAX_GO_BYTES and
 * BRIG_MAX_GO_WORDS: options, then "--" and the program's absolute path and
 * arguments (runtime/launcher/args.ts goMessage(), launcher.c parse_step()).
 * Required: "--box-mode rw|overlay", "--root-bytes N", "--tmp-bytes N",
 * "--wall-ms N", and "--rlimit NAME VALUE" once for each of the kernel's 16
 * RLIMIT_* (VALUE a number or "unlimited"); "--env NAME=VALUE" and "--cwd
 * DIR" are optional. N ms after the program starts, init kills every process
 * of the sandbox (SIGKILL to its whole pid namespace), whatever the runtime is
 * doing, and reports an exit with signal 9 and wall_us >= N*1000.
 *
 * Signals: SIGTERM to the launcher kills the sandbox (init, and with it the
 * whole pid namespace); the launcher still reaps init and reports "exit".
 * If the launcher itself dies, init follows it (parent-death signal).
 *
 * Status lines (ASCII, '\n'-terminated, fields separated by one space):
 *   "ready <init_host_pid>"          the sandbox is prepared, waiting for go
 *   "exit <code> <signal> <wall_us> <exec_ns> <max_rss_kb>"
 *                                    the program ended (code -1 when killed by
 *                                    a signal); exec_ns is CLOCK_MONOTONIC at
 *                                    its execve, -1 when it never got there;
 *                                    max_rss_kb the largest resident set of a
 *                                    process init reaped, -1 when init did not
 *                                    report (killed from outside)
 *   "error <errno> <text>"           the launcher failed; it then exits
 *                                    with BRIG_EXIT_SETUP (or BRIG_EXIT_USAGE)
 */
#ifndef BRIG_PROTOCOL_H
#define BRIG_PROTOCOL_H

#define BRIG_FD_SECCOMP 3
#define BRIG_FD_GO 4
#define BRIG_FD_STATUS 5

#define BRIG_MAX_GO_BYTES 2097152 /* 2 MiB: 64 arguments of 4,096 characters, each up to 4 bytes in UTF-8, with room to spare */
#define BRIG_MAX_GO_WORDS 4096

/* Launcher exit codes. */
#define BRIG_EXIT_OK 0      /* the program ran; its outcome is in the exit line */
#define BRIG_EXIT_USAGE 64  /* bad argv: a bug in the runtime */
#define BRIG_EXIT_SETUP 70  /* the sandbox could not be built: Brig's fault */
#define BRIG_EXIT_ABORTED 71 /* go never came: the runtime cancelled */

/* The program inside runs as this uid/gid; the init and setup run as 0.
 * Both are mapped to unprivileged host ids given on argv. */
#define BRIG_INNER_UID 1000
#define BRIG_INNER_GID 1000

#endif
