import { setMaxListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import type { Express } from 'express';
import { ConfigError, HostError } from '../../runtime/errors.ts';
import { loadServiceConfig, type ServiceConfig } from '../shared/config.ts';
import { EVENTS_MAX_LEN, QUEUE_NAME, RUN_EVENTS_CHANNEL, type RunJobData, type RunOutcome } from '../shared/contract.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { createMetrics, type Metrics } from '../shared/metrics.ts';
import { closeRedis, createRedisClient, redactedRedisUrl } from '../shared/redis.ts';
import { withTimeout } from '../shared/timeout.ts';
import { createApp } from './app.ts';
import { clientErrorHandler, connectRefused, expectationFailed } from './middleware/errors.ts';
import { QueueFailures } from './runs/queue-failures.ts';

export interface StartApiOptions {
  /** Defaults to loadServiceConfig(); redisUrl is required. */
  config?: ServiceConfig;
  logger?: Logger;
  /** Shared with a worker in the same process (brig serve); else the API makes its own. */
  metrics?: Metrics;
}

export interface RunningApi {
  /** http://host:port, with a loopback host when listening on every address. */
  url: string;
  port: number;
  app: Express;
  /**
   * Stops accepting, ends event streams and waits, lets in-flight requests
   * finish within config.shutdownGraceMs (then drops them), and closes
   * the run event sources, Queue and Redis in that order. Idempotent; never exits the process.
   */
  close(): Promise<void>;
}

/** How long the connections may take to come up before the start fails. */
const STARTUP_TIMEOUT_MS = 10_000;
/** A close step that takes longer is given up on (and logged), so that close() always returns. */
const CLOSE_STEP_TIMEOUT_MS = 2_000;
/** Requests past BRIG_REQUEST_TIMEOUT_MS are looked for at least this often. */
const TIMEOUT_CHECK_MAX_MS = 5_000;
/** While draining, connections that went idle are closed this often. */
const IDLE_SWEEP_MS = 100;

/** Addresses that only this machine can reach. */
function isLoopback(host: string): boolean {
  const address = host.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    address === 'localhost' ||
    address === '::1' ||
    /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(address) ||
    address === '::ffff:127.0.0.1'
  );
}

/**
 * An API anyone on the network can reach, with no key, runs anyone's code:
 * that must be a decision (BRIG_ALLOW_ANONYMOUS=1), never a default.
 */
function checkExposure(config: ServiceConfig): void {
  if (isLoopback(config.host) || config.apiKeys.length > 0 || config.allowAnonymous) return;
  throw new ConfigError(
    'api_exposed_without_keys',
    `HOST=${config.host} makes the API reachable from other machines, and BRIG_API_KEYS is empty: anyone could run code here. Set BRIG_API_KEYS, listen on 127.0.0.1, or set BRIG_ALLOW_ANONYMOUS=1 if that is what you want`,
    { field: 'HOST' },
  );
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startApi(opts: StartApiOptions = {}): Promise<RunningApi> {
  const config = opts.config ?? loadServiceConfig();
  const logger = (opts.logger ?? createLogger({ level: config.logLevel, name: 'brig-api', flushMs: config.logFlushMs })).child({
    component: 'api',
  });
  const metrics = opts.metrics ?? createMetrics();
  if (!config.redisUrl) throw new ConfigError('redis_url_missing', 'the API needs REDIS_URL, the Redis its workers use');
  checkExposure(config);

  const redis = createRedisClient(config.redisUrl, { name: 'brig-api', logger });
  // A subscribed connection takes no other command: the run events get one of their own.
  const subscriber = createRedisClient(config.redisUrl, { name: 'brig-api-events', blocking: true, logger });
  // The queue's metadata carries the events stream's length for every producer of events (the workers too).
  const queue = new Queue<RunJobData, RunOutcome>(QUEUE_NAME, { connection: redis, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const failures = new QueueFailures(config.redisUrl, queue.keys.events!, logger);
  queue.on('error', (error: Error) => logger.debug({ err: error }, 'queue error'));

  const closeBullmq: [string, () => Promise<void>][] = [
    ['queue failures', () => failures.close()],
    ['queue', () => queue.close()],
  ];
  const closeClients: [string, () => Promise<void>][] = [
    ['redis events', () => closeRedis(subscriber)],
    ['redis', () => closeRedis(redis)],
  ];
  const runSteps = async (steps: [string, () => Promise<void>][]) => {
    for (const [name, step] of steps) {
      await withTimeout(step(), CLOSE_STEP_TIMEOUT_MS, `closing ${name}`).catch((error: unknown) =>
        logger.warn({ err: error, step: name }, 'api close step failed'),
      );
    }
  };
  // Connected: BullMQ first, so that it stops its reads cleanly, then the clients.
  const closeConnections = () => runSteps([...closeBullmq, ...closeClients]);
  // Never connected: BullMQ's close waits for a connection that will not come,
  // and its loops reconnect a client dropped under them. So: mark BullMQ closing,
  // drop the clients (for good: see closeRedis), give the closes a moment, and
  // drop the clients again.
  const abandonConnections = async () => {
    const closing = Promise.all(closeBullmq.map(([, step]) => step().catch(() => {})));
    await Promise.all(closeClients.map(([, step]) => step()));
    await withTimeout(closing, CLOSE_STEP_TIMEOUT_MS, 'closing the queue').catch((error: unknown) =>
      logger.debug({ err: error }, 'queue not closed'),
    );
    await Promise.all(closeClients.map(([, step]) => step()));
  };

  try {
    await withTimeout(
      Promise.all([redis.ping(), queue.waitUntilReady(), subscriber.subscribe(RUN_EVENTS_CHANNEL), failures.start()]),
      STARTUP_TIMEOUT_MS,
      'connecting to Redis',
    );
  } catch (error) {
    await abandonConnections();
    throw new HostError('redis_unreachable', `cannot reach Redis at ${redactedRedisUrl(config.redisUrl)}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  const shutdown = new AbortController();
  // Every wait=true request and event stream listens for the shutdown: many at once is normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  let app: Express;
  let server: Server;
  let address: AddressInfo;
  try {
    app = createApp({ config, redis, queue, runEvents: { subscriber, failures }, metrics, logger, shutdownSignal: shutdown.signal });
    // Requests Node answers itself by default get the API's error body instead
    // (a missing Host: the requireHost middleware); and Expect: 100-continue is
    // left to the body reader, which refuses an oversized body before the
    // client sends it.
    // Node's own default lets a client that stops halfway through its body
    // hold the connection for 300 s. One limit for the headers and the whole
    // request; the check runs often enough to hold it within half of it.
    server = createServer(
      {
        requireHostHeader: false,
        requestTimeout: config.requestTimeoutMs,
        headersTimeout: config.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(config.requestTimeoutMs / 2, TIMEOUT_CHECK_MAX_MS),
      },
      app,
    );
    server.on('clientError', clientErrorHandler(logger));
    server.on('checkExpectation', expectationFailed(logger));
    server.on('connect', connectRefused(logger));
    server.on('checkContinue', app);
    address = await listen(server, config.port, config.host);
  } catch (error) {
    await closeConnections();
    throw error;
  }
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'api listening');

  let closing: Promise<void> | null = null;
  const close = async () => {
    logger.info('api closing: no new connections, draining requests');
    shutdown.abort();
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    const grace = setTimeout(() => {
      logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over: dropping the remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    try {
      await drained;
    } finally {
      clearInterval(sweep);
      clearTimeout(grace);
    }
    await closeConnections();
    logger.info('api closed');
  };
  return { url, port: address.port, app, close: () => (closing ??= close()) };
}
