import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { OperationDoc, RouteDoc } from '../../shared/openapi.ts';

/**
 * One route: its method and path, its document, and its handler. The app
 * registers these and the OpenAPI document is built from the same list, so
 * a route cannot exist without being documented.
 */
export interface Route extends RouteDoc {
  /** Parse a JSON body (after the key check and the rate limit). */
  body?: boolean;
  handler: (req: Request, res: Response) => Promise<void> | void;
}

export function route(def: Omit<Route, 'auth' | 'doc'> & { auth?: boolean; doc: OperationDoc }): Route {
  return { auth: false, ...def };
}

/**
 * Express 4 does not catch a rejected promise: this hands it to next(), so
 * that every failure reaches the one error handler.
 */
export function asyncHandler(fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    try {
      Promise.resolve(fn(req, res)).catch(next);
    } catch (error) {
      next(error);
    }
  };
}

/** The same for middleware that calls next() when it is done. */
export function asyncMiddleware(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).then(() => next(), next);
  };
}

/**
 * A named path parameter as one string. Express 5 types a parameter as
 * string | string[] (a wildcard matches several segments); Brig's routes
 * have only single-segment ones.
 */
export function pathParam(req: Request, name: string): string {
  const value = req.params[name];
  return Array.isArray(value) ? value.join('/') : (value ?? '');
}
