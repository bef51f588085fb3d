import type { ErrorRequestHandler, RequestHandler } from 'express';
import { BrigError } from '../../../runtime/errors.ts';
import { isErrorCode, ServiceError, statusOf, type ErrorBody, type ErrorCode } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { locals } from '../context.ts';

/**
 * The one place where a failure becomes an HTTP answer: {error: {code,
 * message, field}} with the status from the error table, never a stack.
 * Anything that is not a known error is logged in full and answered as
 * internal_error.
 */

/** Errors of Express's body parser (they carry a `type`). */
interface BodyParserError extends Error {
  type: string;
  limit?: number;
}

const BODY_PARSER_ERRORS: Record<string, (e: BodyParserError) => [ErrorCode, string]> = {
  'entity.parse.failed': (e) => ['body_invalid_json', `the body is not valid JSON: ${e.message}`],
  'entity.too.large': (e) => ['body_too_large', `the body is over the limit of ${e.limit} bytes`],
  'encoding.unsupported': (e) => ['content_type_unsupported', `${e.message}; send the body uncompressed or gzip/deflate`],
  'charset.unsupported': (e) => ['content_type_unsupported', `${e.message}; send the body as UTF-8`],
  'request.aborted': () => ['request_invalid', 'the request was aborted before its body was complete'],
  'request.size.invalid': () => ['request_invalid', 'the body does not have the length its Content-Length says'],
};

const INTERNAL_MESSAGE = 'Brig failed to answer this request; the X-Request-Id header finds it in the logs';

function isBodyParserError(error: unknown): error is BodyParserError {
  return error instanceof Error && typeof (error as Partial<BodyParserError>).type === 'string' && (error as Partial<BodyParserError>).type! in BODY_PARSER_ERRORS;
}

export function toServiceError(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  // The runtime's own checks (limits, file names) have registered codes.
  if (error instanceof BrigError && isErrorCode(error.code)) return new ServiceError(error.code, error.message, { field: error.field, cause: error });
  if (isBodyParserError(error)) {
    const [code, message] = BODY_PARSER_ERRORS[error.type]!(error);
    return new ServiceError(code, message, { cause: error });
  }
  return new ServiceError('internal_error', INTERNAL_MESSAGE, { cause: error });
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const answer = toServiceError(error);
    const log = locals(res).log ?? logger;
    if (answer.code === 'internal_error') log.error({ err: error }, 'request failed');
    else log.debug({ code: answer.code, field: answer.field }, 'request refused');
    if (res.headersSent) {
      // Mid-stream (an event stream): there is no status left to send, only the connection to drop.
      res.destroy();
      return;
    }
    if (answer.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(answer.retryAfterSeconds));
    if (answer.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer');
    const body: ErrorBody = { error: { code: answer.code, message: answer.message, field: answer.field ?? null } };
    res.status(statusOf(answer.code)).json(body);
  };
}

const MAX_ECHOED_PATH_CHARS = 200;

/** After every route: 405 with Allow when the path exists with other methods, else 404. */
export function notFound(routes: readonly { method: string; path: string }[]): RequestHandler {
  const patterns = routes.map((r) => ({
    method: r.method.toUpperCase(),
    regex: new RegExp(`^${r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}/?$`),
  }));
  return (req, res) => {
    const path = req.path.slice(0, MAX_ECHOED_PATH_CHARS);
    const allowed = new Set(patterns.filter((p) => p.regex.test(req.path)).map((p) => p.method));
    if (allowed.has('GET')) allowed.add('HEAD');
    if (allowed.size > 0) {
      res.setHeader('Allow', [...allowed].join(', '));
      throw new ServiceError('method_not_allowed', `${req.method} is not allowed on ${path}; allowed: ${[...allowed].join(', ')}`);
    }
    throw new ServiceError('route_not_found', `no route ${req.method} ${path}; the routes are listed in /openapi.json`);
  };
}
