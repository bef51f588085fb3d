import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostError } from '../../runtime/errors.ts';
import type { Logger } from './logger.ts';

/**
 * A private redis-server, for `brig serve` without REDIS_URL and for the
 * tests: data in a folder of ours, stopped on close(). For `brig serve` it
 * is shut to other local users: only a Unix socket in a 0700 folder, a
 * password generated at each start, and the commands that could reconfigure,
 * empty, replicate or copy it renamed away.
 */
export interface PrivateRedis {
  /** redis://127.0.0.1:<port>, when it listens on TCP (tests only). */
  url?: string;
  /** unix://<dataDir>/redis.sock (with ?password= when it has one). */
  socketUrl: string;
  /** Its TCP port, when it listens on TCP. */
  port?: number;
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
  /**
   * Listen on 127.0.0.1 too, without a password, with every command: for
   * tests that reconfigure it (CONFIG SET) or restart it on its port. Any
   * local user could use such a server, so `brig serve` never asks for it.
   */
  tcp?: boolean | { port: number };
  /** Start the server again when it exits by itself; its exits and restarts are logged here. */
  restart?: { logger: Logger };
}

/**
 * Commands a client of Brig never needs and an intruder would: reconfigure
 * (CONFIG, ACL, MODULE, DEBUG), empty (FLUSHALL, FLUSHDB), stop (SHUTDOWN),
 * copy the data away (REPLICAOF, SLAVEOF, SYNC, PSYNC, MIGRATE, MONITOR) or
 * write files (SAVE, BGSAVE, BGREWRITEAOF; the append-only file is rewritten
 * by Redis itself, not by this command).
 */
const RENAMED_AWAY = [
  'CONFIG',
  'ACL',
  'MODULE',
  'DEBUG',
  'FLUSHALL',
  'FLUSHDB',
  'SHUTDOWN',
  'REPLICAOF',
  'SLAVEOF',
  'SYNC',
  'PSYNC',
  'MIGRATE',
  'MONITOR',
  'SAVE',
  'BGSAVE',
  'BGREWRITEAOF',
];
const PASSWORD_BYTES = 32;
const SOCKET_NAME = 'redis.sock';
/** The password, for tools of the operator's (root only): the URL carries it for Brig's own processes. */
const PASSWORD_FILE = 'password';

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

/** PING over the Unix socket (after AUTH when there is a password); true on +PONG. */
function ping(socketPath: string, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    socket.setTimeout(500);
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(socketPath, () => socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`));
    socket.on('data', (data) => {
      answer += data.toString('latin1');
      const lines = answer.split('\r\n').filter(Boolean);
      if (lines.length < (password === undefined ? 1 : 2)) return;
      socket.destroy();
      // A server still loading its append-only file answers -LOADING: not ready yet.
      resolve(lines.at(-1) === '+PONG');
    });
  });
}

/**
 * The configuration, as redis.conf lines written to the server's stdin
 * (`redis-server -`): the password never appears in a command line that
 * any local user can read in /proc.
 */
function serverConfig(dataDir: string, port: number, opts: PrivateRedisOptions, password: string | undefined): string {
  const lines = [
    `port ${port}`,
    'bind 127.0.0.1',
    `unixsocket ${join(dataDir, SOCKET_NAME)}`,
    'unixsocketperm 700',
    `dir ${dataDir}`,
    `pidfile ${join(dataDir, PIDFILE)}`,
    'save ""',
    'protected-mode yes',
    `appendonly ${opts.appendOnly ? 'yes' : 'no'}`,
  ];
  if (opts.appendOnly) lines.push('appendfsync everysec');
  if (opts.maxMemory) lines.push(`maxmemory ${opts.maxMemory}`, 'maxmemory-policy noeviction');
  if (password !== undefined) {
    lines.push(`requirepass ${password}`);
    for (const command of RENAMED_AWAY) lines.push(`rename-command ${command} ""`);
  }
  return `${lines.join('\n')}\n`;
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
      return (
        readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis-server') && readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dataDir)
      );
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 1 || !isOurs()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + ORPHAN_EXIT_TIMEOUT_MS;
  while (isOurs()) {
    if (Date.now() > deadline)
      throw new HostError('redis_failed', `an earlier redis-server (pid ${pid}) still runs on ${dataDir} and does not stop`);
    await sleep(PING_INTERVAL_MS);
  }
}

/** Spawns redis-server and waits until it answers PING. */
async function launch(dataDir: string, config: string, password: string | undefined): Promise<ChildProcess> {
  // A session (and so a process group) of its own: a terminal's Ctrl-C goes
  // to the whole foreground group, and Redis must outlive the drain that the
  // signal starts in Brig (it is stopped last, by stop()).
  const child = spawn('redis-server', ['-'], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  child.stdin!.on('error', () => {}); // a server that died at once: reported below
  child.stdin!.end(config);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const error = await Promise.race([failed, sleep(0).then(() => null)]);
    if (error)
      throw new HostError(
        'redis_missing',
        `cannot start redis-server (${error.message}): install it with "apt-get install redis-server" or run "npm run setup", or set REDIS_URL`,
      );
    if (child.exitCode !== null) throw new HostError('redis_failed', `redis-server exited with code ${child.exitCode} at start`);
    if (await ping(join(dataDir, SOCKET_NAME), password)) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new HostError('redis_failed', `redis-server did not answer on ${join(dataDir, SOCKET_NAME)} within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(PING_INTERVAL_MS);
  }
}

export async function startPrivateRedis(dataDir: string, opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700); // mkdir keeps the mode of a folder that was there
  await stopOrphan(dataDir);
  const tcpPort = opts.tcp === undefined || opts.tcp === false ? undefined : opts.tcp === true ? await freePort() : opts.tcp.port;
  const password = tcpPort === undefined ? randomBytes(PASSWORD_BYTES).toString('hex') : undefined;
  if (password !== undefined) writeFileSync(join(dataDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 });
  // Port 0: no TCP listener at all.
  const config = serverConfig(dataDir, tcpPort ?? 0, opts, password);
  let child = await launch(dataDir, config, password);
  let stopping = false;
  let restarting: Promise<void> | null = null;

  // Restarted with the same socket, password and folder: clients reconnect by
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
            child = await launch(dataDir, config, password);
            if (stopping) child.kill('SIGTERM');
            else supervise(child);
            restart.logger.info({ pid: child.pid }, 'the private redis-server is back');
            return;
          } catch (error) {
            restart.logger.error({ err: error, retryMs: delay }, 'the private redis-server did not start again');
            await sleep(delay);
          }
        }
      })().finally(() => {
        restarting = null;
      });
    });
  };
  supervise(child);

  let stopped: Promise<void> | undefined;
  const socketPath = join(dataDir, SOCKET_NAME);
  return {
    ...(tcpPort === undefined ? {} : { url: `redis://127.0.0.1:${tcpPort}`, port: tcpPort }),
    socketUrl: `unix://${socketPath}${password === undefined ? '' : `?password=${password}`}`,
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
