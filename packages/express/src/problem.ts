import { type FreshgateError, toProblem } from '@freshgate/core';
import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import type { FreshgateErrorHandler } from './types.js';

/** The `onError` of the `freshgate()` that started each request, for `freshgateErrors()`. */
export const handlers: WeakMap<Request, FreshgateErrorHandler> = new WeakMap();

/**
 * Answers a freshgate error that reaches HTTP (the request's `onError`, else problem+json);
 * other errors, and errors after the headers went out, go on to `next`.
 */
export function answer(error: unknown, req: Request, res: Response, next: NextFunction): void {
  const problem = toProblem(error);
  if (problem === null || res.headersSent) {
    next(error);
    return;
  }
  const onError = handlers.get(req);
  if (onError !== undefined) {
    onError(error as FreshgateError, req, res, next);
    return;
  }
  res.status(problem.status).set(problem.headers).send(JSON.stringify(problem.body));
}

/**
 * Error middleware that answers freshgate errors thrown by `req.db` in a handler: no replica
 * and no allowed fallback → 503 with `Retry-After`, a rejected token in strict mode → 400,
 * both `application/problem+json` unless `freshgate({ onError })` answers them. Other errors
 * go on to the next error handler. Mount it after the routes.
 *
 * @example
 * ```ts
 * app.get('/cases/:id', fresh('read-your-writes'), handler);
 * app.use(freshgateErrors());
 * ```
 */
export function freshgateErrors(): ErrorRequestHandler {
  return function freshgateErrorHandler(err, req, res, next) {
    answer(err, req, res, next);
  };
}
