import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostError } from '../../runtime/errors.ts';
import type { Logger } from './logger.ts';

/**
 * A private redis-server on loopback, for `brig serve` without REDIS_URL and
 * for the tests: data in a folder of ours, a free port, stopped on close().
 */
export interface PrivateRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  /** unix://<dataDir>/redis.sock: the same server, cheaper per command on this machine. */
  socketUrl: string;
  port: number;
  /** The redis-server running now (a new one after a restart). */
  readonly process: ChildProcess;
  /** Stops the server (and its supervision). Idempotent. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /**
   * maxmemory, as redis.conf writes it (512mb, 2gb); writes past it are
   * refused (noeviction), never made room for by dropping somebody's result.
   */
  maxMemory?: string;
  /**
   * An append-only file in the data folder, synced every second: a restart
   * of the server (or of `brig serve`) loses nothing; a crash of the machine
   * or a SIGKILL of Redis loses at most the last second of writes.
   */
  appendOnly?: boolean;
  /** The TCP port; default a free one. */
  port?: number;
  /** Start the server again when it exits by itself; its exits and restarts are logged here. */
  restart?: { logger: Logger };
}

const START_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 50;
/** Between restarts of a server that keeps dying: up to this long. */
const RESTART_BACKOFF_MAX_MS = 5_000;
const RESTART_BACKOFF_FIRST_MS = 100;

/** A port the kernel says is free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(500);
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      // A server still loading its append-only file answers -LOADING: not ready yet.
      resolve(data.toString().startsWith('+PONG'));
    });
  });
}

function serverArgs(dataDir: string, port: number, opts: PrivateRedisOptions): string[] {
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--unixsocket', join(dataDir, 'redis.sock'), '--unixsocketperm', '700',
    '--dir', dataDir, '--pidfile', join(dataDir, PIDFILE), '--save', '', '--protected-mode', 'yes',
    '--appendonly', opts.appendOnly ? 'yes' : 'no',
  ];
  if (opts.appendOnly) args.push('--appendfsync', 'everysec');
  if (opts.maxMemory) args.push('--maxmemory', opts.maxMemory, '--maxmemory-policy', 'noeviction');
  return args;
}

const PIDFILE = 'redis.pid';
const ORPHAN_EXIT_TIMEOUT_MS = 10_000;

/**
 * A redis-server left running on this folder by an owner that was killed
 * (kill -9 of brig serve) would write the same append-only file as the new
 * one. It is told to shut down first (SIGTERM: it syncs its file) and
 * waited for; its data is then the new server's.
 */
async function stopOrphan(dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, PIDFILE), 'utf8').trim());
  } catch {
    return;
  }
  // Redis rewrites its command line, but it works in its --dir: a live
  // redis-server whose working directory is this folder is ours.
  const isOurs = () => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis-server') && readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dataDir);
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 1 || !isOurs()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + ORPHAN_EXIT_TIMEOUT_MS;
  while (isOurs()) {
    if (Date.now() > deadline) throw new HostError('redis_failed', `an earlier redis-server (pid ${pid}) still runs on ${dataDir} and does not stop`);
    await sleep(PING_INTERVAL_MS);
  }
}

/** Spawns redis-server and waits until it answers PING. */
async function launch(dataDir: string, port: number, opts: PrivateRedisOptions): Promise<ChildProcess> {
  const child = spawn('redis-server', serverArgs(dataDir, port, opts), { stdio: 'ignore' });
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const error = await Promise.race([failed, sleep(0).then(() => null)]);
    if (error) throw new HostError('redis_missing', `cannot start redis-server (${error.message}): install it with "apt-get install redis-server" or run "npm run setup", or set REDIS_URL`);
    if (child.exitCode !== null) throw new HostError('redis_failed', `redis-server exited with code ${child.exitCode} at start`);
    if (await ping(port)) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new HostError('redis_failed', `redis-server did not answer on port ${port} within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(PING_INTERVAL_MS);
  }
}

export async function startPrivateRedis(dataDir: string, opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  await stopOrphan(dataDir);
  const port = opts.port ?? await freePort();
  let child = await launch(dataDir, port, opts);
  let stopping = false;
  let restarting: Promise<void> | null = null;

  // Restarted on the same port, socket and folder: clients reconnect by
  // themselves, and the append-only file brings the data back.
  const supervise = (current: ChildProcess) => {
    const restart = opts.restart;
    if (!restart) return;
    current.once('exit', (code, signal) => {
      if (stopping) return;
      restart.logger.error({ code, signal }, 'the private redis-server exited: starting it again');
      restarting = (async () => {
        for (let delay = RESTART_BACKOFF_FIRST_MS; !stopping; delay = Math.min(delay * 2, RESTART_BACKOFF_MAX_MS)) {
          try {
            child = await launch(dataDir, port, opts);
            if (stopping) child.kill('SIGTERM');
            else supervise(child);
            restart.logger.info({ pid: child.pid }, 'the private redis-server is back');
            return;
          } catch (error) {
            restart.logger.error({ err: error, retryMs: delay }, 'the private redis-server did not start again');
            await sleep(delay);
          }
        }
      })().finally(() => { restarting = null; });
    });
  };
  supervise(child);

  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    socketUrl: `unix://${join(dataDir, 'redis.sock')}`,
    port,
    get process() {
      return child;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await restarting;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // SIGTERM: Redis flushes its append-only file before it exits.
        child.kill('SIGTERM');
        await exited;
      })();
      return stopped;
    },
  };
}
