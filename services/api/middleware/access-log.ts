import type { Request, RequestHandler } from 'express';
import type { Metrics } from '../../shared/metrics.ts';
import { locals } from '../context.ts';

const NS_PER_S = 1e9;
const NS_PER_MS = 1e6;
/** The label of requests no route matched: raw URLs would make one series per scanner probe. */
const UNMATCHED_ROUTE = 'unmatched';
/** Probes and scrapes log at debug: they would drown everything else. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** The route pattern (/v1/runs/:id), never the raw URL. */
export function routeLabel(req: Request): string {
  return req.route?.path ? `${req.baseUrl}${req.route.path as string}` : UNMATCHED_ROUTE;
}

/** One log line and the HTTP metrics per request, when its connection is done with it (answered or aborted). */
export function accessLog(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const startNs = process.hrtime.bigint();
    res.once('close', () => {
      const elapsedNs = Number(process.hrtime.bigint() - startNs);
      const route = routeLabel(req);
      const status = res.statusCode;
      metrics.httpRequests.inc({ route, method: req.method, status: String(status) });
      metrics.httpDuration.observe({ route, method: req.method }, elapsedNs / NS_PER_S);
      const { log, runId } = locals(res);
      const entry = {
        method: req.method,
        route,
        path: req.path,
        status,
        ms: Math.round(elapsedNs / NS_PER_MS),
        runId,
        aborted: !res.writableFinished || undefined,
      };
      if (QUIET_ROUTES.has(route)) log.debug(entry, 'request');
      else if (status >= 500) log.warn(entry, 'request');
      else log.info(entry, 'request');
    });
    next();
  };
}
