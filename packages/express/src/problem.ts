import { toProblem } from '@freshgate/core';
import type { ErrorRequestHandler, Response } from 'express';

/** Writes the problem+json response of a freshgate error; `false` for other errors. */
export function sendProblem(res: Response, error: unknown): boolean {
  const problem = toProblem(error);
  if (problem === null || res.headersSent) return false;
  res.status(problem.status).set(problem.headers).send(JSON.stringify(problem.body));
  return true;
}

/**
 * Error middleware that answers freshgate errors thrown by `req.db` in a handler: no replica
 * and no allowed fallback → 503 with `Retry-After`, a rejected token in strict mode → 400,
 * both `application/problem+json`. Other errors go on to the next error handler. Mount it
 * after the routes.
 *
 * @example
 * ```ts
 * app.get('/cases/:id', fresh('read-your-writes'), handler);
 * app.use(freshgateErrors());
 * ```
 */
export function freshgateErrors(): ErrorRequestHandler {
  return function freshgateErrorHandler(err, _req, res, next) {
    if (!sendProblem(res, err)) next(err);
  };
}
