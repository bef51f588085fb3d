import type { Limits } from '../limits.ts';
import { BYTES_PER_MB, msToWholeSecondsCeil, US_PER_MS } from '../units.ts';

/** The launcher's word for RLIM_INFINITY. */
export const UNLIMITED = 'unlimited';

/**
 * The launcher's names for every RLIMIT_* the kernel has (RLIM_NLIMITS = 16).
 * launcher.c refuses to start unless each one is set, so nothing of the
 * worker's own limits reaches a program.
 */
export const RLIMIT_NAMES = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
] as const;

export type RlimitName = (typeof RLIMIT_NAMES)[number];
export type RlimitValue = number | typeof UNLIMITED;

/** RLIMIT_CPU is a per-process backstop; the cgroup-wide CPU counter normally fires first. */
const RLIMIT_CPU_SLACK_S = 1;
/**
 * The kernel skips a core dump for this one RLIMIT_CORE value, pipe helpers
 * included: fs/coredump.c coredump_pipe() refuses `cprm->limit == 1` (the
 * value it gives its own helpers, to stop recursive dumps), and a file dump
 * needs at least a page (the ELF loader's min_coredump). 0 would stop the
 * file but not the pipe: with core_pattern "|helper", the kernel would start
 * the host's helper, as host root, for every crash in a sandbox.
 */
export const RLIMIT_CORE_NO_DUMP = 1;
/** See nproc below: a fork in flight counts once more than the live tasks. */
const NPROC_PER_PROCESS = 2;
/** Queued signals at once: far more than any runtime keeps pending, and each one is kernel memory. */
const PENDING_SIGNALS = 1024;

/**
 * Every resource limit a program starts with, and why each value. Soft and
 * hard are equal. None may exceed the worker's own hard limit: raising one
 * takes CAP_SYS_RESOURCE, and the launcher fails the step (EPERM at
 * "setrlimit") rather than run with less than it was told.
 */
export function programRlimits(limits: Limits): Record<RlimitName, RlimitValue> {
  return {
    // Address space and data segment are not memory: the JVM and V8 reserve
    // gigabytes they never touch. The cgroup limit counts what is touched.
    as: UNLIMITED,
    data: UNLIMITED,
    core: RLIMIT_CORE_NO_DUMP,
    cpu: msToWholeSecondsCeil(limits.cpuMs) + RLIMIT_CPU_SLACK_S,
    fsize: limits.fileSizeMb * BYTES_PER_MB,
    // Ignored by the kernel since 2.4.25; a lock needs an open file anyway.
    locks: limits.openFiles,
    // Locked pages cannot be reclaimed, and no judged program needs mlock.
    memlock: 0,
    // No runtime here uses POSIX message queues. 0 makes mq_open(O_CREAT)
    // fail at once and charges nothing to the slot's per-user counter.
    msgqueue: 0,
    // A program may lower its own priority, never raise it.
    nice: 0,
    nofile: limits.openFiles,
    // The cgroup's pids.max bounds tasks; this is a backstop it always
    // beats. RLIMIT_NPROC counts a fork from its start (copy_creds), the
    // pids controller only near its end, so each fork in flight counts here
    // for a moment: at most one per live task, hence twice the processes
    // limit never refuses. Set to processes + 1 it did refuse, early and
    // cheaply, and a fork bomb then mostly ended in memory_limit instead of
    // time_limit (3 runs of 4 on kernel 6.18: the refused forks' frees,
    // deferred through RCU, piled up). It counts the program's uid in the
    // sandbox's own user namespace: nothing of anyone else's.
    nproc: limits.processes * NPROC_PER_PROCESS,
    // Ignored by the kernel since 2.6; the cgroup enforces memory. Set so a
    // program that asks is told the truth.
    rss: limits.memoryMb * BYTES_PER_MB,
    // No real-time scheduling (rtprio 0); rttime bounds a real-time task's
    // CPU without a blocking call, should one ever exist, at the CPU limit.
    rtprio: 0,
    rttime: limits.cpuMs * US_PER_MS,
    sigpending: PENDING_SIGNALS,
    stack: limits.stackMb * BYTES_PER_MB,
  };
}
