import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../../shared/logger.ts';
import { locals } from '../context.ts';

/** An incoming X-Request-Id is kept when it is short and plain, so a caller's id shows up in our logs. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Gives every request an id (echoed in X-Request-Id) and a logger that carries it. */
export function requestContext(logger: Logger, shutdownSignal: AbortSignal): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    Object.assign(locals(res), { requestId, log: logger.child({ reqId: requestId }) });
    res.setHeader('X-Request-Id', requestId);
    // While the server drains, each connection closes after its answer.
    if (shutdownSignal.aborted) res.setHeader('Connection', 'close');
    next();
  };
}
