import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, SandboxError } from '../errors.ts';
import { type GoSpec, goMessage } from '../launcher/args.ts';
import { launcherFailure } from '../launcher/failure.ts';
import { OutputCollector } from '../launcher/output.ts';
import type { Limits } from '../limits.ts';
import { classify, encodeOutput, type StepResult } from '../result.ts';
import { bytesToKb, mbToBytes, msToNs, nsToMs, usToMs } from '../units.ts';
import type { PreparedSandbox } from './prepared.ts';

/** After a kill, the kernel needs a moment to tear down the pid namespace. */
const CGROUP_EMPTY_TIMEOUT_MS = 5_000;
/** How long output may keep flowing after the launcher exited before we kill stragglers. */
const DRAIN_GRACE_MS = 1_000;
const SIGKILL = 9;
const CPU_POLL_MIN_MS = 5;
const CPU_POLL_MAX_MS = 25;
/** Poll often enough that a runaway overshoots the CPU limit by ~1% at most. */
const CPU_POLL_SHARE_OF_LIMIT = 0.01;

export interface StepSpec extends GoSpec {
  stdin: Buffer;
  limits: Limits;
  signal?: AbortSignal;
  /** process.hrtime.bigint() when the runtime was asked for the step; the start of "submit to exec". */
  submittedAt?: bigint;
}

export interface StepTimings {
  /** From the runtime call to the program's execve, on CLOCK_MONOTONIC; null when it never got there. */
  submitToExecNs: bigint | null;
}

type KillReason = 'time_limit' | 'output_limit' | 'cancelled';

/**
 * One step in a prepared sandbox: set the limits, reset the cgroup's
 * counters, send the go message (workspace, limits, program), enforce the
 * limits while it runs, and account for it from the kernel's counters once
 * the sandbox is gone. Resolves with a result for every program outcome;
 * rejects with SandboxError only when Brig itself failed, CancelledError on
 * abort. The sandbox is used up either way.
 */
export async function runStep(
  sandbox: PreparedSandbox,
  spec: StepSpec,
  cpuQuotaCores: number,
  onTimings?: (timings: StepTimings) => void,
): Promise<StepResult> {
  sandbox.claim();
  const { cgroup, status, exited } = sandbox;
  const { stdin, stdout, stderr } = sandbox.streams;

  let killedFor: KillReason | null = null;
  // Timers and stream callbacks have no caller to throw to: a host failure
  // there (a cgroup that cannot be read or killed) is kept, the sandbox is
  // stopped anyway, and the step fails with it once the sandbox is gone.
  let hostFailure: unknown = null;
  const guarded = (fn: () => void) => () => {
    try {
      fn();
    } catch (error) {
      hostFailure ??= error;
      sandbox.kill();
    }
  };
  const kill = (reason: KillReason) => {
    killedFor ??= reason;
    guarded(() => sandbox.stop())();
  };
  const onAbort = () => kill('cancelled');
  const timers: NodeJS.Timeout[] = [];
  let cgroupEmpty = false;
  try {
    if (spec.signal?.aborted) throw new CancelledError();
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const message = goMessage(spec);
    cgroup.applyLimits({ memoryBytes: mbToBytes(spec.limits.memoryMb), cpuQuotaCores, pids: spec.limits.processes + 1 /* init */ });
    // Here, not when the sandbox became ready (as the CPU and OOM baselines
    // were): on v1 the peak is counted above the usage at this moment, and
    // memory the last sandbox's teardown was still giving back then would
    // hide a small program's peak.
    cgroup.resetPeak();
    const goAt = performance.now();
    sandbox.go(message, spec.box.dir);
    // Attached after the go-ahead, off its path (each stream starts reading
    // with a syscall): nothing of the output is lost meanwhile, since no
    // event can come before this synchronous code ends.
    const output = new OutputCollector(spec.limits.outputBytes, () => kill('output_limit'));
    const drained = Promise.all([output.attach('stdout', stdout), output.attach('stderr', stderr)]);
    stdin.end(spec.stdin);
    // The sandbox's init enforces the wall limit too (--wall-ms), so it holds
    // while this event loop is stuck; whichever fires first ends the run.
    timers.push(setTimeout(() => kill('time_limit'), spec.limits.wallMs));
    const cpuLimitNs = msToNs(spec.limits.cpuMs);
    const pollMs = Math.min(CPU_POLL_MAX_MS, Math.max(CPU_POLL_MIN_MS, spec.limits.cpuMs * CPU_POLL_SHARE_OF_LIMIT));
    timers.push(
      setInterval(
        guarded(() => {
          if (cgroup.cpuNs() >= cpuLimitNs) kill('time_limit');
        }),
        pollMs,
      ),
    );

    const end = await status.next();
    // The launcher reaps init, then closes the status fd (EOF: the sandbox's
    // processes are gone), then exits; its exit ends the sandbox's mount
    // namespace (an RCU wait), which the step does not wait for.
    // Runtime.settled() does.
    await status.closed;
    const nodeWallMs = performance.now() - goAt;
    for (const t of timers) clearTimeout(t);
    // The pipes close when the last sandbox process dies. Should anything
    // outlive the launcher, the cgroup finds and kills it.
    if ((await Promise.race([drained.then(() => true), sleep(DRAIN_GRACE_MS).then(() => false)])) === false) {
      cgroup.killAll();
      await drained;
    }
    await cgroup.waitEmpty(CGROUP_EMPTY_TIMEOUT_MS);
    cgroupEmpty = true;
    if (hostFailure) throw hostFailure;
    if (killedFor === 'cancelled') throw new CancelledError();

    let exitCode: number | null = null;
    let signal: number | null = SIGKILL;
    let wallMs = nodeWallMs;
    let maxRssKb = 0;
    if (end.kind === 'exit') {
      maxRssKb = end.maxRssKb ?? 0;
      ({ exitCode, signal } = end);
      if (end.wallUs !== null) wallMs = usToMs(end.wallUs);
      onTimings?.({
        submitToExecNs: end.execNs !== null && spec.submittedAt !== undefined ? end.execNs - spec.submittedAt : null,
      });
    } else if (killedFor === null) {
      throw launcherFailure(end, await exited, nodeWallMs);
    }
    const usage = cgroup.usage();
    // Init killed from outside before it forked the program (no wall time):
    // nothing of the program ran, so there is no outcome to report, unless
    // the memory limit is what killed it.
    if (end.kind === 'exit' && end.wallUs === null && killedFor === null && usage.oomKills === 0)
      throw new SandboxError('sandbox_killed_before_start', `the sandbox was killed (signal ${end.signal}) before its program started`);
    const cpuMs = nsToMs(usage.cpuNs);
    wallMs = Math.round(wallMs);
    const encodedStdout = await encodeOutput('stdout', output.kept('stdout'));
    const encodedStderr = await encodeOutput('stderr', output.kept('stderr'));
    return {
      stdout: '',
      stderr: '',
      ...encodedStdout,
      ...encodedStderr,
      exitCode,
      signal,
      verdict: classify({
        exitCode,
        signal,
        cpuMs,
        wallMs,
        oomKills: usage.oomKills,
        killedFor,
        cpuLimitMs: spec.limits.cpuMs,
        wallLimitMs: spec.limits.wallMs,
      }),
      cpuMs,
      wallMs,
      memoryKb: bytesToKb(usage.memoryPeakBytes),
      maxRssKb,
      truncated: output.truncated,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    spec.signal?.removeEventListener('abort', onAbort);
    if (!cgroupEmpty) {
      sandbox.stop();
      await exited.catch(() => {});
      sandbox.destroyStreams();
      await cgroup.waitEmpty(CGROUP_EMPTY_TIMEOUT_MS).catch(() => cgroup.killAll());
    }
  }
}
