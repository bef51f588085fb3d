import express, { type RequestHandler } from 'express';
import { ServiceError } from '../../shared/errors.ts';

/**
 * A JSON body or nothing: another content type is refused (415) before a byte
 * is read, and the body is read up to limitBytes (413 past it, checked on
 * Content-Length before reading when the client sends one).
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    if (!req.is(['application/json', '+json'])) {
      const sent = req.get('content-type');
      throw new ServiceError('content_type_unsupported', sent ? `content type ${sent} is not supported; send the body as application/json` : 'send a JSON body with Content-Type: application/json');
    }
    next();
  };
  return [requireJson, express.json({ limit: limitBytes, strict: true, type: () => true })];
}
