import { closeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import type { RunCgroup } from '../cgroups/manager.ts';
import { launcherArgs, type SandboxSpec } from '../launcher/args.ts';
import { type LauncherExit, launcherFailure } from '../launcher/failure.ts';
import { FD_GO, FD_STATUS } from '../launcher/protocol.ts';
import { type StatusOrEof, StatusReader } from '../launcher/status.ts';
import { sendWithFd } from '../system/fd-passing.ts';
import { openTreeClone } from '../system/libc.ts';
import { type SpawnedProcess, spawnProcess } from '../system/spawn.ts';

/** Building a sandbox takes milliseconds; this long means something is stuck. */
const SETUP_TIMEOUT_MS = 10_000;
/** How long the launcher gets to reap a killed sandbox before it is killed itself. */
const LAUNCHER_KILL_GRACE_MS = 2_000;

export interface SandboxHost {
  launcherPath: string;
  /** Open file holding the compiled seccomp filter; handed to the launcher as fd 3. */
  seccompFd: number;
}

/** The launcher's pipes: the program's stdio. */
export interface SandboxStreams {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
}

/**
 * A sandbox built up to its go-ahead: the launcher spawned, the namespaces
 * made, the id maps written, init in the slot's cgroup (any wait for the
 * kernel there happened now) and the mounts made. What is left depends on the
 * step: the workspace, the limits and the program, which runStep sends with
 * the go message. Runs one step, once.
 */
export class PreparedSandbox {
  /** performance.now() when it became ready. */
  readonly readyAt = performance.now();
  private used = false;
  /** Our end of init's go socket; -1 once closed. */
  private goSocket: number;

  private constructor(
    private readonly launcher: SpawnedProcess,
    readonly streams: SandboxStreams,
    readonly status: StatusReader,
    /** Resolves once the launcher has exited and been reaped. */
    readonly exited: Promise<LauncherExit>,
    readonly cgroup: RunCgroup,
  ) {
    this.goSocket = launcher.sockets.get(FD_GO)!;
  }

  /**
   * Spawns the launcher and waits until the sandbox is ready. The slot's
   * cgroup must hold no process (the previous sandbox is gone): it is renewed
   * first, then init joins it. SandboxError when the sandbox cannot be built.
   */
  static async prepare(host: SandboxHost, cgroup: RunCgroup, spec: Omit<SandboxSpec, 'cgroupDirs'>): Promise<PreparedSandbox> {
    await cgroup.renew();
    // fds 0-5 of the launcher; see runtime/launcher/protocol.h.
    const launcher = await spawnProcess(
      host.launcherPath,
      [host.launcherPath, ...launcherArgs({ ...spec, cgroupDirs: cgroup.dirs })],
      ['in', 'out', 'out', { shared: host.seccompFd }, 'socket', 'out'],
    );
    const [stdin, stdout, stderr, statusStream] = [0, 1, 2, FD_STATUS].map((fd) => launcher.streams.get(fd)!);
    stdin!.on('error', () => {}); // the program may exit without reading its input
    const status = new StatusReader(statusStream as Readable);
    // The launcher holds the status fd until it exits: its EOF is our cue to reap.
    const exited = status.closed.then(() => launcher.reap());
    const sandbox = new PreparedSandbox(
      launcher,
      { stdin: stdin as Writable, stdout: stdout as Readable, stderr: stderr as Readable },
      status,
      exited,
      cgroup,
    );
    const setupTimer = setTimeout(() => sandbox.stop(), SETUP_TIMEOUT_MS);
    let first: StatusOrEof;
    try {
      first = await status.next();
    } finally {
      clearTimeout(setupTimer);
    }
    if (first.kind !== 'ready') {
      const how = await exited;
      sandbox.destroyStreams();
      await cgroup.waitEmpty(LAUNCHER_KILL_GRACE_MS).catch(() => cgroup.killAll());
      throw launcherFailure(first, how, null);
    }
    try {
      cgroup.resetWaitingCounters();
    } catch (error) {
      await sandbox.discard();
      throw error;
    }
    return sandbox;
  }

  /**
   * The go-ahead, straight to init: the message, and with it a detached copy
   * of the workspace mount (made here, in the host's mount namespace, where
   * init can no longer look). Then the socket is closed. A sandbox found dead
   * here is not an error of ours: the launcher reports how init ended.
   */
  go(message: Buffer, workspaceDir: string): void {
    const tree = openTreeClone(workspaceDir);
    try {
      sendWithFd(this.goSocket, message, tree);
    } finally {
      closeSync(tree);
      this.closeGoSocket();
    }
  }

  /** Marks it used; a sandbox runs one step and is never handed out again. */
  claim(): void {
    if (this.used) throw new Error('a prepared sandbox runs one step only');
    this.used = true;
  }

  /**
   * SIGTERM asks the launcher to kill init (and so the pid namespace) and reap
   * it; the cgroup kill catches anything that might outlive that. Should the
   * launcher not exit, it is killed outright after a grace period.
   */
  stop(): void {
    this.launcher.kill('SIGTERM');
    // Armed before the cgroup kill, which can throw (a host without
    // CAP_KILL): the launcher's SIGKILL still ends init by its parent-death
    // signal, and its status pipe, which holds the event loop, with it.
    setTimeout(() => this.launcher.kill('SIGKILL'), LAUNCHER_KILL_GRACE_MS).unref();
    this.cgroup.killAll();
  }

  /** Kills it outright, for a launcher that broke the protocol or a host failure. */
  kill(): void {
    this.launcher.kill('SIGKILL');
  }

  /** Stops a sandbox that never ran a step, and waits until its cgroup is empty. */
  async discard(): Promise<void> {
    this.used = true;
    let failure: unknown = null;
    try {
      this.stop();
    } catch (error) {
      failure = error;
    }
    await this.exited.catch(() => {});
    this.destroyStreams();
    if (failure) throw failure;
    await this.cgroup.waitEmpty(LAUNCHER_KILL_GRACE_MS).catch(() => this.cgroup.killAll());
  }

  /** Closes our ends of its pipes and of its go socket (init, still waiting, then gives up). */
  destroyStreams(): void {
    for (const stream of [this.streams.stdin, this.streams.stdout, this.streams.stderr]) stream.destroy();
    this.closeGoSocket();
  }

  private closeGoSocket(): void {
    if (this.goSocket < 0) return;
    closeSync(this.goSocket);
    this.goSocket = -1;
  }
}
