import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostError } from '../../runtime/errors.ts';

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
  process: ChildProcess;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 50;

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
      resolve(data.toString().startsWith('+PONG'));
    });
  });
}

export async function startPrivateRedis(dataDir: string): Promise<PrivateRedis> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const socketPath = join(dataDir, 'redis.sock');
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--unixsocket', socketPath, '--unixsocketperm', '700',
    '--dir', dataDir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes',
  ], { stdio: 'ignore' });
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const error = await Promise.race([failed, sleep(0).then(() => null)]);
    if (error) throw new HostError('redis_missing', `cannot start redis-server (${error.message}): install it with "apt-get install redis-server" or run "npm run setup", or set REDIS_URL`);
    if (child.exitCode !== null) throw new HostError('redis_failed', `redis-server exited with code ${child.exitCode} at start`);
    if (await ping(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new HostError('redis_failed', `redis-server did not answer on port ${port} within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(PING_INTERVAL_MS);
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    socketUrl: `unix://${socketPath}`,
    port,
    process: child,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      })();
      return stopped;
    },
  };
}
