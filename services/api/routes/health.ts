import type { Readiness } from '../../shared/schemas.ts';
import { withTimeout } from '../../shared/timeout.ts';
import type { ApiContext } from '../context.ts';
import { type Route, route } from './route.ts';

/** A Redis that does not answer PING within this is as good as down, for readiness. */
const READY_PING_TIMEOUT_MS = 1_000;

/** GET /healthz (the process answers) and GET /readyz (it can do its job: Redis answers and a worker is live). */
export function healthRoutes(ctx: ApiContext): Route[] {
  async function readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    let redis: Readiness['redis'] = 'ok';
    let workersLive = 0;
    try {
      await withTimeout(ctx.redis.ping(), READY_PING_TIMEOUT_MS, 'redis PING');
      workersLive = (await ctx.workers.heartbeats({ refresh: true })).length;
      if (workersLive === 0) reasons.push('no live worker: runs would only wait in the queue');
      const full = await ctx.room.fullness();
      if (full) {
        redis = 'full';
        reasons.push(full);
      }
    } catch {
      // The reason, not Redis's own words: those can name hosts and paths.
      redis = 'unreachable';
      reasons.push(`redis does not answer within ${READY_PING_TIMEOUT_MS} ms`);
    }
    if (ctx.shutdownSignal.aborted) reasons.push('shutting down');
    return { status: reasons.length ? 'not_ready' : 'ready', redis, workersLive, reasons };
  }

  return [
    route({
      method: 'get',
      path: '/healthz',
      handler: (_req, res) => {
        res.json({ status: 'ok' });
      },
      doc: {
        operationId: 'health',
        tags: ['operations'],
        summary: 'The process is up',
        responses: { 200: { description: 'always, while the process answers', schema: 'Health' } },
      },
    }),
    route({
      method: 'get',
      path: '/readyz',
      handler: async (_req, res) => {
        const ready = await readiness();
        res.status(ready.status === 'ready' ? 200 : 503).json(ready);
      },
      doc: {
        operationId: 'ready',
        tags: ['operations'],
        summary: 'Redis answers and at least one worker is live',
        responses: {
          200: { description: 'ready', schema: 'Readiness' },
          503: { description: 'not ready; reasons says why', schema: 'Readiness' },
        },
      },
    }),
  ];
}
