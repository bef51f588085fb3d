/**
 * `brig serve` as a child process, for load tests and benchmarks: the API, a
 * worker and its private Redis, on a fresh state dir, cgroup parent and
 * sandbox uid range of its own, so that it never shares anything with a
 * `brig serve` that may already run on this machine.
 *
 * Lifecycle: startServeProcess() returns once /readyz answers 200;
 * stopServeProcess() sends SIGTERM, waits (SIGKILL after a timeout) and
 * removes the state dir, unless something is still mounted below it.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../services/shared/redis-server.ts';
import { mountsUnder } from './host-state.ts';

const BRIG = new URL('../bin/brig.js', import.meta.url).pathname;
/** Loopback: the load comes from this machine, and brig serve refuses other addresses without API keys. */
const LOOPBACK_HOST = '127.0.0.1';
/** mkdtemp makes the state dir 0700; sandbox uids must be able to pass through it to their workspaces. */
const STATE_DIR_MODE = 0o711;
const DEFAULT_READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 100;
/** One /readyz probe may take this long: a server that accepts and never answers must not outlast the deadline. */
const READY_PROBE_TIMEOUT_MS = 2_000;
/** brig serve gives active runs BRIG_SHUTDOWN_GRACE_MS (30 s by default) on SIGTERM; a little more than that. */
export const DEFAULT_STOP_TIMEOUT_MS = 45_000;

/**
 * What every load test wants unless it says otherwise: no rate limit (the
 * load would be refused, not measured), no fixed worker metrics port (two
 * servers would clash on it), and only warnings in the output.
 */
const LOAD_TEST_ENV: Record<string, string> = {
  BRIG_RATE_LIMIT_PER_MINUTE: '0',
  BRIG_WORKER_METRICS_PORT: '0',
  LOG_LEVEL: 'warn',
};

export interface ServeProcessOptions {
  /** Names the state dir (`<tmp>/brig-<name>-XXXXXX`) and the cgroup parent (`brig-<name>-<our pid>`). */
  name: string;
  /** First host uid of the sandboxes: keep it away from the 600000 default of a brig serve that may run here. */
  uidBase: number;
  /** More environment (BRIG_SLOTS, BRIG_RESULT_TTL_SECONDS, …); it may override LOAD_TEST_ENV, not the state dir, port or uids. */
  env?: Record<string, string>;
  /** Default: stdout and stderr shared with this process. */
  stdio?: StdioOptions;
  /** Its own process group, so that a Ctrl-C meant for the script does not reach it and the script can stop it in order. */
  detached?: boolean;
  /** A Redis of the caller's (REDIS_URL) instead of the private one brig serve starts without it. */
  redisUrl?: string;
  readyTimeoutMs?: number;
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  port: number;
  stateDir: string;
  cgroupParent: string;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
}

export interface ServeStopped {
  /** False when SIGTERM was not enough within the timeout and the process was killed. */
  stoppedInTime: boolean;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  /** From SIGTERM to the exit. */
  stopMs: number;
  /** True when something was still mounted below the state dir, so it was left in place. */
  stateDirKept: boolean;
}

/**
 * The private Redis that brig serve starts in its state dir (cli/commands/serve.ts),
 * by its unix socket, with the password it generated at start (a root-only file).
 */
export function privateRedisUrl(stateDir: string): string {
  const password = readFileSync(join(stateDir, 'redis', 'password'), 'utf8').trim();
  return `unix://${join(stateDir, 'redis', 'redis.sock')}?password=${encodeURIComponent(password)}`;
}

/** Starts brig serve and waits until /readyz answers 200; if it exits first or is not ready in time, cleans up and throws. */
export async function startServeProcess(options: ServeProcessOptions): Promise<ServeProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), `brig-${options.name}-`));
  chmodSync(stateDir, STATE_DIR_MODE);
  const cgroupParent = `brig-${options.name}-${process.pid}`;
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...LOAD_TEST_ENV,
    ...options.env,
    PORT: String(port),
    HOST: LOOPBACK_HOST,
    BRIG_STATE_DIR: stateDir,
    BRIG_CGROUP_PARENT: cgroupParent,
    BRIG_UID_BASE: String(options.uidBase),
  };
  // Unset, brig serve starts its private Redis in the state dir.
  if (options.redisUrl === undefined) delete env.REDIS_URL;
  else env.REDIS_URL = options.redisUrl;
  const child = spawn(process.execPath, [BRIG, 'serve'], {
    env,
    stdio: options.stdio ?? ['ignore', 'inherit', 'inherit'],
    detached: options.detached ?? false,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const serve: ServeProcess = { child, url: `http://${LOOPBACK_HOST}:${port}`, port, stateDir, cgroupParent, exited };
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  for (const deadline = Date.now() + readyTimeoutMs; ; ) {
    if (child.exitCode !== null || child.signalCode !== null) {
      removeStateDirUnlessMounted(stateDir);
      throw new Error(`brig serve exited at start (code ${child.exitCode}, signal ${child.signalCode}); its output above says why`);
    }
    if (
      await fetch(`${serve.url}/readyz`, { signal: AbortSignal.timeout(READY_PROBE_TIMEOUT_MS) }).then(
        (r) => r.ok,
        () => false,
      )
    )
      return serve;
    if (Date.now() > deadline) {
      await stopServeProcess(serve);
      throw new Error(`brig serve was not ready within ${readyTimeoutMs} ms; its /readyz at ${serve.url} says what it waits for`);
    }
    await sleep(READY_POLL_MS);
  }
}

/**
 * SIGTERM, then SIGKILL if it has not exited within timeoutMs; then, after
 * settleMs (for leftovers still being reaped), removes the state dir unless
 * something is mounted below it. Safe to call again once it has exited.
 */
export async function stopServeProcess(
  serve: ServeProcess,
  { timeoutMs = DEFAULT_STOP_TIMEOUT_MS, settleMs = 0 } = {},
): Promise<ServeStopped> {
  const startMs = Date.now();
  serve.child.kill('SIGTERM');
  // Not ref'd: once the server has exited, the timer must not hold this process for the rest of the timeout.
  const stoppedInTime = await Promise.race([serve.exited.then(() => true), sleep(timeoutMs, undefined, { ref: false }).then(() => false)]);
  if (!stoppedInTime) {
    console.log(`brig serve did not exit within ${timeoutMs} ms of SIGTERM: killing it`);
    serve.child.kill('SIGKILL');
    await serve.exited;
  }
  const stopMs = Date.now() - startMs;
  if (settleMs > 0) await sleep(settleMs);
  const stateDirKept = !removeStateDirUnlessMounted(serve.stateDir);
  return { stoppedInTime, exitCode: serve.child.exitCode, signalCode: serve.child.signalCode, stopMs, stateDirKept };
}

/** rm -rf across a leftover mount would delete through it (a bind of a host folder, say): such a dir is left for a human. */
function removeStateDirUnlessMounted(stateDir: string): boolean {
  if (mountsUnder(stateDir).length > 0) {
    console.log(`state dir ${stateDir} kept: something is still mounted below it`);
    return false;
  }
  rmSync(stateDir, { recursive: true, force: true });
  return true;
}
