import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunCgroup } from './cgroups/manager.ts';
import { CancelledError } from './errors.ts';
import { type LaunchSpec, launcherArgs } from './launcher/args.ts';
import { launcherFailure } from './launcher/failure.ts';
import { OutputCollector } from './launcher/output.ts';
import { FD_GO, FD_STATUS, GO_BYTE } from './launcher/protocol.ts';
import { StatusReader } from './launcher/status.ts';
import type { Limits } from './limits.ts';
import { classify, encodeOutput, type StepResult } from './result.ts';
import { type SpawnedProcess, spawnProcess } from './system/spawn.ts';
import { bytesToKb, mbToBytes, msToNs, nsToMs, usToMs } from './units.ts';

/** Building a sandbox takes milliseconds; this long means something is stuck. */
const SETUP_TIMEOUT_MS = 10_000;
/** After a kill, the kernel needs a moment to tear down the pid namespace. */
const CGROUP_EMPTY_TIMEOUT_MS = 5_000;
/** How long the launcher gets to reap a killed sandbox before it is killed itself. */
const LAUNCHER_KILL_GRACE_MS = 2_000;
/** How long output may keep flowing after the launcher exited before we kill stragglers. */
const DRAIN_GRACE_MS = 1_000;
const SIGKILL = 9;
const CPU_POLL_MIN_MS = 5;
const CPU_POLL_MAX_MS = 25;
/** Poll often enough that a runaway overshoots the CPU limit by ~1% at most. */
const CPU_POLL_SHARE_OF_LIMIT = 0.01;

export interface StepSpec extends Omit<LaunchSpec, 'cgroupDirs'> {
  stdin: Buffer;
  limits: Limits;
  signal?: AbortSignal;
}

export interface StepHost {
  launcherPath: string;
  /** Open file holding the compiled seccomp filter; handed to the launcher as fd 3. */
  seccompFd: number;
  cpuQuotaCores: number;
  cgroup: RunCgroup;
}

type KillReason = 'time_limit' | 'output_limit' | 'cancelled';

/**
 * One step in one fresh sandbox: spawn the launcher, wait until the sandbox is
 * built, reset the cgroup's counters, let the program go, enforce the limits
 * while it runs, and account for it from the kernel's counters once the
 * sandbox is gone. Resolves with a result for every program outcome; rejects
 * with SandboxError only when Brig itself failed, CancelledError on abort.
 */
export async function runStep(host: StepHost, spec: StepSpec): Promise<StepResult> {
  const { cgroup, cpuQuotaCores } = host;
  if (spec.signal?.aborted) throw new CancelledError();
  cgroup.applyLimits({ memoryBytes: mbToBytes(spec.limits.memoryMb), cpuQuotaCores, pids: spec.limits.processes + 1 /* init */ });

  // fds 0-5 of the launcher; see runtime/launcher/protocol.h.
  const launcher = spawnProcess(
    host.launcherPath,
    [host.launcherPath, ...launcherArgs({ ...spec, cgroupDirs: cgroup.dirs })],
    ['in', 'out', 'out', { shared: host.seccompFd }, 'in', 'out'],
  );
  const [stdin, stdout, stderr, , go, statusStream] = [0, 1, 2, 3, FD_GO, FD_STATUS].map((fd) => launcher.streams.get(fd)!);
  stdin!.on('error', () => {}); // the program may exit without reading its input
  go!.on('error', () => {});
  const status = new StatusReader(statusStream as Readable);
  // The launcher holds the status fd until it exits: its EOF is our cue to reap.
  const exited = status.closed.then(() => launcher.reap());

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
      launcher.kill('SIGKILL');
    }
  };
  const kill = (reason: KillReason) => {
    killedFor ??= reason;
    guarded(() => stopSandbox(launcher, cgroup))();
  };
  const output = new OutputCollector(spec.limits.outputBytes, () => kill('output_limit'));
  const drained = Promise.all([output.attach('stdout', stdout as Readable), output.attach('stderr', stderr as Readable)]);

  const onAbort = () => kill('cancelled');
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  const timers: NodeJS.Timeout[] = [];
  let cgroupEmpty = false;
  try {
    const setupTimer = setTimeout(
      guarded(() => stopSandbox(launcher, cgroup)),
      SETUP_TIMEOUT_MS,
    );
    const first = await status.next();
    clearTimeout(setupTimer);
    if (first.kind !== 'ready') {
      const how = await exited;
      if (killedFor === 'cancelled') throw new CancelledError();
      throw launcherFailure(first, how, null);
    }

    cgroup.resetCounters();
    const goAt = performance.now();
    go!.end(GO_BYTE);
    stdin!.end(spec.stdin);
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
    const how = await exited;
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
    if (end.kind === 'exit') {
      ({ exitCode, signal } = end);
      if (end.wallUs !== null) wallMs = usToMs(end.wallUs);
    } else if (killedFor === null) {
      throw launcherFailure(end, how, nodeWallMs);
    }
    const usage = cgroup.usage();
    const cpuMs = nsToMs(usage.cpuNs);
    wallMs = Math.round(wallMs);
    return {
      stdout: '',
      stderr: '',
      ...encodeOutput('stdout', output.bytes('stdout')),
      ...encodeOutput('stderr', output.bytes('stderr')),
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
      truncated: output.truncated,
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    spec.signal?.removeEventListener('abort', onAbort);
    if (!cgroupEmpty) {
      stopSandbox(launcher, cgroup);
      await exited.catch(() => {});
      for (const stream of launcher.streams.values()) stream.destroy();
      await cgroup.waitEmpty(CGROUP_EMPTY_TIMEOUT_MS).catch(() => cgroup.killAll());
    }
  }
}

/**
 * SIGTERM asks the launcher to kill init (and so the pid namespace) and reap
 * it; the cgroup kill catches anything that might outlive that. Should the
 * launcher not exit, it is killed outright after a grace period.
 */
function stopSandbox(launcher: SpawnedProcess, cgroup: RunCgroup): void {
  launcher.kill('SIGTERM');
  cgroup.killAll();
  setTimeout(() => launcher.kill('SIGKILL'), LAUNCHER_KILL_GRACE_MS).unref();
}
