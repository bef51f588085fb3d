import { z } from 'zod';

/**
 * Builds the OpenAPI 3.1 document of the HTTP API from the routes the app
 * registers and the zod schemas its validator uses, so that the document
 * cannot describe a route or a field the API does not have. The API passes
 * its route table in; nothing here knows Express.
 */

export interface ResponseDoc {
  description: string;
  /** A name in `schemas`; answered as application/json unless contentType says otherwise. */
  schema?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** A name in `schemas`, sent as application/json. */
  requestBody?: string;
  query?: z.ZodObject;
  /** Descriptions of the path's :params. */
  params?: Record<string, string>;
  responses: Record<number, ResponseDoc>;
}

export interface RouteDoc {
  method: 'get' | 'post' | 'delete';
  /** Express pattern, e.g. /v1/runs/:id. */
  path: string;
  /** Behind the API key check and the rate limit. */
  auth: boolean;
  doc: OperationDoc;
}

export const OPENAPI_VERSION = '3.1.0';
const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const ERROR_SCHEMA = 'Error';

/** Error answers every guarded route can give, besides its own. */
const AUTH_RESPONSES: Record<number, ResponseDoc> = {
  401: { description: 'no valid API key (unauthorized)', schema: ERROR_SCHEMA },
  429: {
    description: 'over the rate limit (rate_limited)',
    schema: ERROR_SCHEMA,
    headers: { 'Retry-After': 'seconds until the window resets' },
  },
};
const ALWAYS_RESPONSES: Record<number, ResponseDoc> = {
  500: { description: 'Brig failed (internal_error)', schema: ERROR_SCHEMA },
};

/** `/v1/runs/:id` → `/v1/runs/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function pathParams(expressPath: string): string[] {
  return [...expressPath.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}

/** A JSON Schema from zod, without the per-document keys that OpenAPI sets once at the top. */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, $id: __, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return rest;
}

function componentSchemas(schemas: Record<string, z.ZodType>): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { io: 'input', target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(
    Object.entries(out.schemas).map(([id, schema]) => {
      const { $schema: _, $id: __, ...rest } = schema as Record<string, unknown>;
      return [id, rest];
    }),
  );
}

function responseObject(response: ResponseDoc): Record<string, unknown> {
  const out: Record<string, unknown> = { description: response.description };
  if (response.schema) {
    out.content = { [response.contentType ?? 'application/json']: { schema: { $ref: `#/components/schemas/${response.schema}` } } };
  } else if (response.contentType) {
    out.content = { [response.contentType]: { schema: { type: 'string' } } };
  }
  if (response.headers) {
    out.headers = Object.fromEntries(
      Object.entries(response.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }]),
    );
  }
  return out;
}

export function buildOpenApiDocument(opts: {
  title: string;
  version: string;
  description: string;
  routes: RouteDoc[];
  schemas: Record<string, z.ZodType>;
}): Record<string, unknown> {
  if (!opts.schemas[ERROR_SCHEMA]) throw new Error(`the document needs a schema named ${ERROR_SCHEMA}`);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of opts.routes) {
    const { doc } = route;
    const parameters: unknown[] = pathParams(route.path).map((name) => ({
      name,
      in: 'path',
      required: true,
      description: doc.params?.[name],
      schema: { type: 'string' },
    }));
    for (const [name, field] of Object.entries(doc.query?.shape ?? {})) {
      const schema = jsonSchema(field as z.ZodType);
      parameters.push({ name, in: 'query', required: false, description: schema.description, schema });
    }
    const responses = { ...doc.responses, ...(route.auth ? AUTH_RESPONSES : {}), ...ALWAYS_RESPONSES };
    for (const response of Object.values(responses)) {
      if (response.schema && !opts.schemas[response.schema]) throw new Error(`${doc.operationId}: unknown schema ${response.schema}`);
    }
    if (doc.requestBody && !opts.schemas[doc.requestBody]) throw new Error(`${doc.operationId}: unknown schema ${doc.requestBody}`);
    const operations = paths[openApiPath(route.path)] ?? {};
    paths[openApiPath(route.path)] = operations;
    operations[route.method] = {
      operationId: doc.operationId,
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      tags: doc.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(doc.requestBody
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: { $ref: `#/components/schemas/${doc.requestBody}` } } },
            },
          }
        : {}),
      responses: Object.fromEntries(Object.entries(responses).map(([status, response]) => [status, responseObject(response)])),
      security: route.auth ? [{ bearerAuth: [] }, { tokenAuth: [] }] : [],
    };
  }
  return {
    openapi: OPENAPI_VERSION,
    jsonSchemaDialect: JSON_SCHEMA_DIALECT,
    info: { title: opts.title, version: opts.version, description: opts.description },
    paths,
    components: {
      schemas: componentSchemas(opts.schemas),
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <key>' },
        tokenAuth: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' },
      },
    },
  };
}
