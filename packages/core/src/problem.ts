import {
  FreshgateError,
  FreshnessUnavailableError,
  NodeUnavailableError,
  PoolExhaustedError,
  StatementTimeoutError,
  TokenRejectedError,
} from './errors.js';

/** An HTTP error response in RFC 9457 `application/problem+json` form. */
export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; [key: string]: unknown };
}

const TYPE_BASE = 'https://freshgate.dev/problems/';

/**
 * The HTTP response for a freshgate error that reaches a client, or `null` for any other
 * error (let the framework handle it).
 *
 * @example
 * ```ts
 * const problem = toProblem(err);
 * if (problem) res.status(problem.status).set(problem.headers).send(JSON.stringify(problem.body));
 * ```
 */
export function toProblem(error: unknown): Problem | null {
  if (error instanceof FreshnessUnavailableError) {
    return {
      status: 503,
      headers: {
        'Content-Type': 'application/problem+json',
        'Retry-After': String(error.retryAfterSeconds),
      },
      body: {
        type: `${TYPE_BASE}freshness-unavailable`,
        title: 'Freshness unavailable',
        status: 503,
        detail: `No database node can serve this read under its freshness contract right now (${error.reason}). Retry after ${error.retryAfterSeconds}s.`,
        reason: error.reason,
      },
    };
  }
  if (error instanceof TokenRejectedError) {
    return {
      status: 400,
      headers: { 'Content-Type': 'application/problem+json' },
      body: {
        type: `${TYPE_BASE}token-rejected`,
        title: 'Freshness token rejected',
        status: 400,
        detail: `The X-Freshness-Token or fg_fresh cookie was rejected (${error.reason}). Drop it and retry.`,
        reason: error.reason,
      },
    };
  }
  if (error instanceof FreshgateError && error.statusCode !== undefined) {
    const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
    // Overload answers: tell the client when to come back rather than to give up.
    if (
      error instanceof PoolExhaustedError ||
      error instanceof StatementTimeoutError ||
      error instanceof NodeUnavailableError
    )
      headers['Retry-After'] = String(error.retryAfterSeconds);
    return {
      status: error.statusCode,
      headers,
      body: {
        type: `${TYPE_BASE}${error.code.toLowerCase().replaceAll('_', '-')}`,
        title: error.name,
        status: error.statusCode,
        detail: error.message,
      },
    };
  }
  return null;
}
