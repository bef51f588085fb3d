import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HostError } from '../../runtime/errors.ts';
import { startApi } from '../../services/api/server.ts';
import { loadRuntimeConfig, loadServiceConfig } from '../../services/shared/config.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { createMetrics } from '../../services/shared/metrics.ts';
import { redactedRedisUrl } from '../../services/shared/redis.ts';
import { type PrivateRedis, startPrivateRedis } from '../../services/shared/redis-server.ts';
import { startWorker } from '../../services/worker/worker.ts';
import { EXIT } from '../exit-codes.ts';

type Part = 'serve' | 'api' | 'worker';

/** How long the process may linger after its shutdown before it exits anyway. */
const EXIT_LINGER_MS = 2_000;

const HELP: Record<Part, string> = {
  serve: `Usage: brig serve

Runs the HTTP API and a worker in one process, listening on HOST (default
127.0.0.1) and PORT (default 8080). Without REDIS_URL it starts a private
redis-server with its data in $BRIG_STATE_DIR/redis: an append-only file
synced every second (a restart loses no accepted run), maxmemory
BRIG_REDIS_MAXMEMORY (default 1gb) with noeviction, started again if it dies,
and stopped on exit. Every setting is an environment variable (see the README).
SIGTERM or SIGINT (Ctrl-C) shut down in order: the API stops accepting and
drains, the worker finishes its runs within BRIG_SHUTDOWN_GRACE_MS (then hands
the rest back to the queue), then Redis stops. Sandboxes and the private Redis
have process groups of their own, so a Ctrl-C reaches only brig; a second one
is logged and ignored while the drain runs.

Exit codes: 0 clean shutdown; 1 Brig failed; 3 the host or the configuration
is not ready (for example HOST is not loopback and BRIG_API_KEYS is empty).
`,
  api: `Usage: brig api

Runs only the HTTP API on HOST:PORT (default 127.0.0.1:8080), against
REDIS_URL. On an address other machines can reach it refuses to start without
BRIG_API_KEYS, unless BRIG_ALLOW_ANONYMOUS=1 says that is meant.
`,
  worker: `Usage: brig worker

Runs only a worker against REDIS_URL: BRIG_SLOTS sandboxes at once, metrics on
BRIG_WORKER_METRICS_PORT. Start as many as you like, on as many machines.
`,
};

/** `brig serve`, `brig api` and `brig worker`: long-running parts of the service. */
export function serviceCommand(part: Part) {
  return async (argv: string[]): Promise<number> => {
    const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h', default: false } } });
    if (values.help) {
      process.stdout.write(HELP[part]);
      return EXIT.OK;
    }
    const runtimeConfig = loadRuntimeConfig();
    const serviceConfig = loadServiceConfig();
    const logger = createLogger({ level: serviceConfig.logLevel, name: `brig-${part}`, flushMs: serviceConfig.logFlushMs });
    const metrics = createMetrics();
    const stops: (() => Promise<void>)[] = [];
    // Listened for before anything starts: a SIGTERM during the start (which
    // takes seconds: Redis, the runtime, the language probes) must not kill
    // the process half-built, with mounts and cgroups left behind. It is
    // acted on once the start is done, by the same orderly stop.
    // A second signal (an impatient second Ctrl-C) is logged, not obeyed:
    // dying half-way through the drain would leave runs, cgroups and mounts
    // behind. The drain is bounded by BRIG_SHUTDOWN_GRACE_MS; SIGKILL still
    // ends the process, and the next start sweeps what it left.
    let signalled = false;
    const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) {
          logger.warn({ signal }, 'already shutting down: active runs finish or go back to the queue within BRIG_SHUTDOWN_GRACE_MS');
          return;
        }
        signalled = true;
        resolve(signal);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });

    let redis: PrivateRedis | undefined;
    let redisUrl = serviceConfig.redisUrl;
    if (!redisUrl) {
      if (part !== 'serve')
        throw new HostError('redis_url_missing', `brig ${part} needs REDIS_URL (only brig serve starts a private Redis)`);
      redis = await startPrivateRedis(join(runtimeConfig.stateDir, 'redis'), {
        maxMemory: serviceConfig.redisMaxMemory,
        appendOnly: true,
        restart: { logger: logger.child({ component: 'redis' }) },
      });
      redisUrl = redis.socketUrl;
      logger.info({ redisUrl: redactedRedisUrl(redisUrl) }, 'started a private redis-server: Unix socket only, with a password');
    }
    try {
      if (part !== 'worker') {
        const api = await startApi({ config: { ...serviceConfig, redisUrl }, logger, metrics });
        stops.push(() => api.close());
        logger.info({ url: api.url }, 'api listening');
      }
      if (part !== 'api') {
        const worker = await startWorker({ runtimeConfig, serviceConfig, redisUrl, logger, metrics });
        stops.push(() => worker.close());
        logger.info({ workerId: worker.workerId, metricsUrl: worker.metricsUrl }, 'worker running');
      }
    } catch (error) {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await redis?.stop();
      throw error;
    }

    const signal = await stopSignal;
    logger.info({ signal }, 'shutting down');
    // The API first (no new runs), then the worker (finish or hand back runs), then Redis.
    for (const stop of stops) await stop();
    await redis?.stop();
    logger.info('stopped');
    // Everything of ours is closed. A library connection that still retries
    // (bullmq#4656) would keep the process alive: this timer, which holds
    // nothing open itself, ends it.
    setTimeout(() => {
      logger.warn({ lingerMs: EXIT_LINGER_MS }, 'connections still open after the shutdown: exiting anyway');
      process.exit(EXIT.OK);
    }, EXIT_LINGER_MS).unref();
    return EXIT.OK;
  };
}
