import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

/**
 * A request body nobody reads. After the answer, Node reads and discards
 * whatever of the request is left, to keep the connection alive: for a body
 * refused before it was read, or sent to a route that takes none, that can be
 * 50 MB of reading for nothing. Such a connection is closed after the answer
 * instead, and Node stops reading it.
 */

/** The request declared a body (a length over 0, or chunks) that has not all arrived. */
export function bodyStillArriving(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** For the routes that take no body: the answer closes a connection that still has one coming. */
export const closeUnreadBody: RequestHandler = (req, res, next) => {
  if (bodyStillArriving(req)) res.setHeader('Connection', 'close');
  next();
};
