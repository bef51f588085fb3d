import type { ApiContext } from '../context.ts';
import { type Route, route } from './route.ts';

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'waiting-children'] as const;

/** GET /metrics: the Prometheus registry, with the queue and worker gauges read at scrape time. */
export function metricsRoutes(ctx: ApiContext): Route[] {
  const { metrics } = ctx;
  return [
    route({
      method: 'get',
      path: '/metrics',
      handler: async (_req, res) => {
        try {
          const counts = await ctx.queue.getJobCounts(...JOB_STATES);
          for (const state of JOB_STATES) metrics.queueJobs.set({ state }, counts[state] ?? 0);
          metrics.workersLive.set((await ctx.workers.heartbeats()).length);
        } catch (error) {
          // The process metrics are still worth a scrape when Redis is away.
          ctx.logger.warn({ err: error }, 'queue metrics not refreshed');
        }
        res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
      },
      doc: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        responses: { 200: { description: 'the text exposition format', contentType: 'text/plain' } },
      },
    }),
  ];
}
