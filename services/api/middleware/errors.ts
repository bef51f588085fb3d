import { type IncomingMessage, maxHeaderSize, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { BrigError } from '../../../runtime/errors.ts';
import { type ErrorBody, type ErrorCode, isErrorCode, ServiceError, statusOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { storeFault } from '../../shared/store-errors.ts';
import { locals } from '../context.ts';
import { STORE_FULL_RETRY_AFTER_S } from '../runs/admit.ts';
import { bodyStillArriving } from './unread-body.ts';

/**
 * The one place where a failure becomes an HTTP answer: {error: {code,
 * message, field}} with the status from the error table, never a stack.
 * Anything that is not a known error is logged in full and answered as
 * internal_error. Requests that never reach Express (refused by Node's HTTP
 * parser, CONNECT, or with an Expect other than 100-continue) are answered
 * here too, with the same body: see clientErrorHandler, connectRefused and
 * expectationFailed.
 */

const INTERNAL_MESSAGE = 'Brig failed to answer this request; the X-Request-Id header finds it in the logs';
const STORE_FULL_MESSAGE = 'the result store (Redis) is full and refuses writes until results expire; retry later';
const STORE_UNAVAILABLE_MESSAGE = 'the result store (Redis) does not answer; retry shortly';
/** Redis reconnects within a second or two of coming back. */
const STORE_UNAVAILABLE_RETRY_AFTER_S = 2;

/** Express's route parameter decoding marks the URIError of a malformed %XX with status 400. */
function isPathDecodingError(error: unknown): boolean {
  return error instanceof URIError && (error as URIError & { status?: unknown }).status === 400;
}

export function toServiceError(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  // The runtime's own checks (limits, file names) have registered codes.
  if (error instanceof BrigError && isErrorCode(error.code))
    return new ServiceError(error.code, error.message, { field: error.field, cause: error });
  // Redis down or full is an outage the caller can wait out, never a 500.
  const fault = storeFault(error);
  if (fault === 'full')
    return new ServiceError('store_full', STORE_FULL_MESSAGE, { cause: error, retryAfterSeconds: STORE_FULL_RETRY_AFTER_S });
  if (fault === 'unavailable')
    return new ServiceError('store_unavailable', STORE_UNAVAILABLE_MESSAGE, {
      cause: error,
      retryAfterSeconds: STORE_UNAVAILABLE_RETRY_AFTER_S,
    });
  if (isPathDecodingError(error)) {
    return new ServiceError(
      'path_invalid',
      'the URL path has malformed percent-encoding: write each % as %XX with two hex digits, of UTF-8 bytes',
      { cause: error },
    );
  }
  return new ServiceError('internal_error', INTERNAL_MESSAGE, { cause: error });
}

function errorBody(answer: ServiceError): ErrorBody {
  return { error: { code: answer.code, message: answer.message, field: answer.field ?? null } };
}

function sendError(req: IncomingMessage, res: ServerResponse, answer: ServiceError): void {
  if (answer.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(answer.retryAfterSeconds));
  if (answer.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer');
  // A refused body is not drained to keep the connection: it is closed, and Node stops reading it.
  if (bodyStillArriving(req)) res.setHeader('Connection', 'close');
  const body = JSON.stringify(errorBody(answer));
  res.writeHead(statusOf(answer.code), { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const answer = toServiceError(error);
    const log = locals(res).log ?? logger;
    if (answer.code === 'internal_error') log.error({ err: error }, 'request failed');
    else log.debug({ code: answer.code, field: answer.field }, 'request refused');
    if (res.headersSent) {
      // Mid-stream (an event stream): there is no status left to send, only the connection to drop.
      res.destroy();
      return;
    }
    sendError(req, res, answer);
  };
}

/** Node's parser error codes that have their own answer; every other one is request_malformed. */
const PARSER_ERROR_CODES: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'headers_too_large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request_timeout',
};
const MAX_ECHOED_REASON_CHARS = 120;

function parserErrorAnswer(error: Error & { code?: string; reason?: unknown }): ServiceError {
  const code = PARSER_ERROR_CODES[error.code ?? ''] ?? 'request_malformed';
  if (code === 'headers_too_large')
    return new ServiceError(
      code,
      `the request line and headers are over ${maxHeaderSize} bytes; send a shorter URL, or fewer or shorter headers`,
    );
  if (code === 'request_timeout')
    return new ServiceError(code, "the request's headers or body did not arrive in time; send the whole request promptly");
  // llhttp's reason is one of its fixed sentences ("Invalid method encountered"), never request data.
  const reason = typeof error.reason === 'string' ? `: ${error.reason.slice(0, MAX_ECHOED_REASON_CHARS)}` : '';
  return new ServiceError(code, `the HTTP request cannot be parsed${reason}; check the request line, the headers and the body's framing`);
}

/**
 * For the server's 'clientError': a request that Node's HTTP parser refused
 * (a garbage request line, a bad header, conflicting lengths, a timeout)
 * never reaches Express, and Node's own answer is a bare status line. This
 * writes the same error body, raw, and closes the connection: after a parse
 * error there is no telling where a next request would start.
 */
export function clientErrorHandler(logger: Logger): (error: Error & { code?: string }, socket: Duplex) => void {
  return (error, socket) => {
    const answer = parserErrorAnswer(error);
    logger.debug({ code: answer.code, parserError: error.code }, 'request refused by the HTTP parser');
    // As Node's default: answer only when no byte of another answer is on this connection yet.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    writeRawAnswer(socket, answer);
  };
}

/** An answer written straight to the socket, which is then closed: for requests Express never sees. */
function writeRawAnswer(socket: Duplex, answer: ServiceError): void {
  const status = statusOf(answer.code);
  const body = JSON.stringify(errorBody(answer));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.once('finish', () => socket.destroy());
}

/**
 * For the server's 'connect': Node hands a CONNECT request over with its raw
 * socket and, without a listener, leaves the client waiting. Brig is not a
 * proxy: 405, and the connection is closed.
 */
export function connectRefused(logger: Logger): (req: IncomingMessage, socket: Duplex) => void {
  return (_req, socket) => {
    const answer = new ServiceError(
      'method_not_allowed',
      'CONNECT is not allowed: Brig is not a proxy; the routes are listed in /openapi.json',
    );
    logger.debug({ code: answer.code }, 'request refused');
    socket.on('error', () => {});
    writeRawAnswer(socket, answer);
  };
}

/** For the server's 'checkExpectation': an Expect other than 100-continue is refused (Node's own answer is a bare 417). */
export function expectationFailed(logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const answer = new ServiceError(
      'expectation_unsupported',
      `Expect: ${JSON.stringify(String(req.headers.expect).slice(0, MAX_ECHOED_REASON_CHARS))} is not supported; only 100-continue is`,
    );
    logger.debug({ code: answer.code }, 'request refused');
    sendError(req, res, answer);
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
