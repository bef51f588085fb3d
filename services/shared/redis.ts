import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';
import { OutageLog } from './store-errors.ts';

export type { Redis };

/**
 * Redis connections of the services. Two kinds: a command connection, which
 * fails a command after a few reconnect attempts so that an HTTP request gets
 * an answer instead of hanging, and a blocking one (subscribers, XREAD,
 * BullMQ's Worker), which retries forever (maxRetriesPerRequest null, as
 * BullMQ requires).
 */
const COMMAND_RETRIES_PER_REQUEST = 2;
const RECONNECT_BACKOFF_STEP_MS = 100;
/**
 * A command waits for COMMAND_RETRIES_PER_REQUEST reconnect attempts before
 * it fails, so the longest gap between attempts bounds how long an HTTP
 * request waits for its 503 during an outage: about a second.
 */
const COMMAND_RECONNECT_BACKOFF_MAX_MS = 500;
/** Blocking connections (BullMQ's) wait for Redis anyway; they need not knock as often. */
const BLOCKING_RECONNECT_BACKOFF_MAX_MS = 2_000;
/** How long quit() may take before the socket is simply dropped. */
const QUIT_TIMEOUT_MS = 1_000;

/**
 * Clients being closed. ioredis's disconnect() does not stop a client that is
 * between reconnect attempts once something (BullMQ's connection init) calls
 * connect() again; a retry strategy that gives up is what ends it.
 */
const closing = new WeakSet<Redis>();

/**
 * ioredis options for a Redis URL: redis://, rediss://, or unix:///path/to.sock
 * for a Unix socket (what `brig serve` uses for its private Redis: on one
 * machine it costs less per command than loopback TCP).
 */
export function redisConnectionOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol === 'unix:') {
    // A URL cannot carry user info without a host, so a socket's password
    // comes as ?password= (redis-py writes unix:// URLs the same way).
    const password = parsed.searchParams.get('password') ?? undefined;
    return { path: decodeURIComponent(parsed.pathname), ...(password === undefined ? {} : { password }) };
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined;
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : DEFAULT_REDIS_PORT,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number.isInteger(db) ? db : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

const DEFAULT_REDIS_PORT = 6379;

/** The URL without its password (user info or ?password=), for logs and messages. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    return '(unparsable url)';
  }
}

/** The same, in the shape BullMQ's own connection options take. */
export function bullmqConnection(url: string): { url?: string; path?: string; password?: string } {
  const parsed = new URL(url);
  return parsed.protocol === 'unix:' ? (redisConnectionOptions(url) as { path: string; password?: string }) : { url };
}

/**
 * A Redis that drops our packets would hold each connection attempt for
 * ioredis's default 10 s; a command connection gives up sooner, so an HTTP
 * request gets its 503 in about a second.
 */
const CONNECT_TIMEOUT_MS = 1_000;

/**
 * A connection with its outages logged once each (OutageLog): every client
 * of the services comes from here, so none is without an error listener
 * (ioredis would print an unstructured line per failed reconnect).
 */
export function createRedisClient(url: string, opts: { name: string; blocking?: boolean; logger: Logger }): Redis {
  const client: Redis = new Redis({
    ...redisConnectionOptions(url),
    connectionName: opts.name,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: opts.blocking ? null : COMMAND_RETRIES_PER_REQUEST,
    retryStrategy: (attempt) =>
      closing.has(client)
        ? null
        : Math.min(
            attempt * RECONNECT_BACKOFF_STEP_MS,
            opts.blocking ? BLOCKING_RECONNECT_BACKOFF_MAX_MS : COMMAND_RECONNECT_BACKOFF_MAX_MS,
          ),
  });
  const outages = new OutageLog(opts.logger, opts.name);
  client.on('error', (error: Error) => outages.failed(error));
  client.on('ready', () => outages.recovered());
  return client;
}

/** Quits politely, and drops the socket if Redis does not answer in time. Safe to call twice. */
export async function closeRedis(client: Redis): Promise<void> {
  closing.add(client);
  if (client.status === 'end') return;
  // QUIT needs a connection; one that is down or still connecting is just dropped.
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
      }),
    ]);
  } catch {
    // Already closed or never connected: disconnect() below settles it either way.
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** Every key that matches a pattern, with SCAN (never KEYS, which blocks Redis). */
export async function scanKeys(client: Redis, pattern: string, batch = 200): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', batch);
    for (const key of keys) found.add(key);
    cursor = next;
  } while (cursor !== '0');
  return [...found];
}

/** Every LuaScript made in this process, by SHA: what MONITOR or SLOWLOG shows as `evalsha <sha>` is named by it. */
const scriptNames = new Map<string, string>();

/** The name of a LuaScript of this process by its SHA, or undefined. */
export function luaScriptName(sha: string): string | undefined {
  return scriptNames.get(sha);
}

/** A Lua script run by its SHA (EVALSHA), loaded on the first NOSCRIPT. */
export class LuaScript {
  readonly sha: string;
  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
    scriptNames.set(this.sha, name);
  }

  async run(client: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
