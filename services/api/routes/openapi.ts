import { type Route, route } from './route.ts';

/** GET /openapi.json: the document, built once from the routes and schemas. */
export function openApiRoutes(document: () => Record<string, unknown>): Route[] {
  return [
    route({
      method: 'get',
      path: '/openapi.json',
      handler: (_req, res) => {
        res.json(document());
      },
      doc: {
        operationId: 'openapi',
        tags: ['operations'],
        summary: 'This document (OpenAPI 3.1)',
        responses: { 200: { description: 'the OpenAPI document' } },
      },
    }),
  ];
}
