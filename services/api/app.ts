import { readFileSync } from 'node:fs';
import express, { type Express } from 'express';
import { ConfigError } from '../../runtime/errors.ts';
import { ERROR_CODES, RUN_ERROR_CODES } from '../shared/errors.ts';
import { buildOpenApiDocument } from '../shared/openapi.ts';
import { RunStore } from '../shared/run-store.ts';
import {
  errorBodySchema,
  healthSchema,
  languagesSchema,
  readinessSchema,
  runAcceptedSchema,
  runEventSchema,
  runRecordSchema,
  runRequestSchema,
} from '../shared/schemas.ts';
import type { ApiContext, ApiDeps } from './context.ts';
import { accessLog } from './middleware/access-log.ts';
import { requireApiKey } from './middleware/auth.ts';
import { errorHandler, notFound } from './middleware/errors.ts';
import { jsonBody } from './middleware/json-body.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestContext } from './middleware/request-context.ts';
import { requireHost } from './middleware/require-host.ts';
import { closeUnreadBody } from './middleware/unread-body.ts';
import { healthRoutes } from './routes/health.ts';
import { languageRoutes } from './routes/languages.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { openApiRoutes } from './routes/openapi.ts';
import { asyncHandler, type Route } from './routes/route.ts';
import { runEventRoutes } from './routes/run-events.ts';
import { runRoutes } from './routes/runs.ts';
import { RunEventHub } from './runs/event-hub.ts';
import { StoreRoom } from './runs/store-room.ts';
import { LiveWorkers } from './workers/live-workers.ts';

export type { ApiDeps } from './context.ts';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The HTTP API as an Express app, without listening: the caller owns the
 * server and every connection in deps. Each request passes: request id and
 * logger → access log and metrics → Host check → (for /v1) API key → rate
 * limit → (for a body) content type and JSON → the route → the one error
 * handler.
 */
export function createApp(deps: ApiDeps): Express {
  const store = new RunStore(deps.redis, deps.config.resultTtlSeconds);
  const ctx: ApiContext = {
    ...deps,
    store,
    room: new StoreRoom(deps.redis),
    hub: new RunEventHub(deps.runEvents, store, deps.logger),
    workers: new LiveWorkers(deps.redis, deps.logger),
    shutdownSignal: deps.shutdownSignal ?? new AbortController().signal,
    runRequestSchema: runRequestSchema(deps.config),
  };

  let document: Record<string, unknown> = {};
  const routes: Route[] = [
    ...runRoutes(ctx),
    ...runEventRoutes(ctx),
    ...languageRoutes(ctx),
    ...healthRoutes(ctx),
    ...metricsRoutes(ctx),
    ...openApiRoutes(() => document),
  ];
  document = buildOpenApiDocument({
    title: 'Brig',
    version: packageVersion,
    description:
      'Sandboxed code execution for online judges. Every error answer is {"error": {"code", "message", "field"}}; the codes:\n\n' +
      Object.entries(ERROR_CODES)
        .map(([code, { status, description }]) => `- \`${code}\` (${status}): ${description}`)
        .join('\n') +
      '\n\nA run whose verdict is internal_error says why in error.code, one of:\n\n' +
      Object.entries(RUN_ERROR_CODES)
        .map(
          ([code, { kind, description }]) =>
            `- \`${code}\` (${kind === 'brig' ? 'Brig failed it' : 'the job was refused'}): ${description}`,
        )
        .join('\n'),
    routes,
    schemas: {
      RunRequest: ctx.runRequestSchema,
      RunAccepted: runAcceptedSchema,
      RunRecord: runRecordSchema,
      RunEvent: runEventSchema,
      Languages: languagesSchema,
      Health: healthSchema,
      Readiness: readinessSchema,
      Error: errorBodySchema,
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Flat query strings only: ?a[b]=c stays a string, never an object.
  app.set('query parser', 'simple');
  // req.ip, which limits count by when there is no API key: the peer, unless
  // BRIG_TRUST_PROXY names the proxies whose X-Forwarded-For to believe.
  try {
    app.set('trust proxy', deps.config.trustProxy);
  } catch (error) {
    throw new ConfigError(
      'config_invalid',
      `configuration BRIG_TRUST_PROXY: ${(error as Error).message}; give a hop count or addresses and CIDRs separated by commas`,
      { field: 'BRIG_TRUST_PROXY', cause: error },
    );
  }
  app.use(requestContext(deps.logger, ctx.shutdownSignal), accessLog(deps.metrics), requireHost);
  const guard = [requireApiKey(deps.config.apiKeys), rateLimit(deps.redis, deps.config.rateLimitPerMinute)];
  const body = jsonBody(deps.config.bodyLimitBytes);
  for (const r of routes) {
    app[r.method](r.path, ...(r.auth ? guard : []), ...(r.body ? body : [closeUnreadBody]), asyncHandler(r.handler));
  }
  app.use(notFound(routes));
  app.use(errorHandler(deps.logger));
  return app;
}
