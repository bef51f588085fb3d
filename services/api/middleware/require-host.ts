import type { RequestHandler } from 'express';
import { ServiceError } from '../../shared/errors.ts';

/**
 * An HTTP/1.1 request must have a Host header: RFC 9112 §3.2 has the server
 * answer 400 without one. Node checks this itself but answers with an empty
 * body, so the server turns its check off (requireHostHeader: false) and the
 * refusal is made here, through the one error handler.
 */
export const requireHost: RequestHandler = (req, _res, next) => {
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
    throw new ServiceError('request_malformed', 'an HTTP/1.1 request needs a Host header');
  }
  next();
};
