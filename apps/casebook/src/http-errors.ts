import { HttpProblem } from './problem.js';

/**
 * The problem+json response of an error that is not freshgate's (those are answered by the
 * adapters): the app's own problems, and the framework's 4xx errors for bad requests
 * (malformed JSON, oversized body, wrong content type). Anything else is a 500 and is logged.
 */
export function problemFor(error: unknown): { status: number; body: Record<string, unknown> } {
  if (error instanceof HttpProblem) return { status: error.status, body: error.toJSON() };
  const e = error as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const status = Number(e?.statusCode ?? e?.status);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const detail =
      e.type === 'entity.parse.failed' || /JSON/i.test(String(e.message))
        ? 'the request body is not valid JSON'
        : status === 413
          ? 'the request body is too large (16 kB at most)'
          : String(e.message ?? '');
    return {
      status,
      body: { type: 'about:blank', title: TITLES[status] ?? 'Bad Request', status, detail },
    };
  }
  console.error(error);
  return {
    status: 500,
    body: { type: 'about:blank', title: 'Internal Server Error', status: 500 },
  };
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
};

export const PROBLEM_JSON = 'application/problem+json';

/** Largest accepted request body. */
export const BODY_LIMIT = 16 * 1024;
