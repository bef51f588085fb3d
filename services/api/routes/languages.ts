import type { ApiContext } from '../context.ts';
import { type Route, route } from './route.ts';

/** GET /v1/languages: what the live workers can run, with versions and default limits. */
export function languageRoutes(ctx: ApiContext): Route[] {
  return [
    route({
      method: 'get',
      path: '/v1/languages',
      auth: true,
      handler: async (_req, res) => {
        res.json({ languages: [...(await ctx.workers.languages()).values()] });
      },
      doc: {
        operationId: 'listLanguages',
        tags: ['languages'],
        summary: 'Languages the live workers can run',
        description: 'The union over workers with a fresh heartbeat; empty when no worker is live.',
        responses: { 200: { description: 'the languages, by name', schema: 'Languages' } },
      },
    }),
  ];
}
