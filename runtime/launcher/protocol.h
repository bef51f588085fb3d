/*
 * The wire protocol between the TypeScript runtime and brig-launcher.
 * runtime/launcher/protocol.ts mirrors every constant here, and
 * test/unit/runtime/launcher/protocol.test.ts checks that they match.
 *
 * File descriptors the runtime hands to the launcher:
 *   0,1,2  the program's stdin, stdout and stderr (pipes)
 *   3      the seccomp filter: a regular file holding struct sock_filter[]
 *   4      go: the runtime writes one byte when the program may start;
 *          EOF without that byte aborts the sandbox before anything runs
 *   5      status: the launcher writes text lines, one event each
 *
 * argv: options, then "--" and the program's absolute path and arguments;
 * runtime/launcher/args.ts builds it and launcher.c parse_args() reads it.
 * "--wall-ms N" is required: N ms after the program starts, init kills every
 * process of the sandbox (SIGKILL to its whole pid namespace), whatever the
 * runtime is doing, and reports "exit -1 9 <wall_us>" with wall_us >= N*1000.
 * Also required: "--oom-score-adj N", and "--rlimit NAME VALUE" once for each
 * of the kernel's 16 RLIMIT_* (VALUE a number or "unlimited"). "--mask PATH"
 * and "--ro PATH" name paths inside the sandbox, applied after pivot_root.
 *
 * Signals: SIGTERM to the launcher kills the sandbox (init, and with it the
 * whole pid namespace); the launcher still reaps init and reports "exit".
 * If the launcher itself dies, init follows it (parent-death signal).
 *
 * Status lines (ASCII, '\n'-terminated, fields separated by one space):
 *   "ready <init_host_pid>"          the sandbox is built, waiting for go
 *   "exit <code> <signal> <wall_us>" the program ended (code -1 when killed by a signal)
 *   "error <errno> <text>"           the launcher failed; it then exits
 *                                    with BRIG_EXIT_SETUP (or BRIG_EXIT_USAGE)
 */
#ifndef BRIG_PROTOCOL_H
#define BRIG_PROTOCOL_H

#define BRIG_FD_SECCOMP 3
#define BRIG_FD_GO 4
#define BRIG_FD_STATUS 5

#define BRIG_GO_BYTE 'g'

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
