import { badRequest, HttpProblem } from './problem.js';

/** The body must be a JSON object. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

export function requiredString(
  body: Record<string, unknown>,
  field: string,
  maxLength: number,
): string {
  const value = body[field];
  if (typeof value !== 'string') throw badRequest(`\`${field}\` must be a string`);
  const trimmed = value.trim();
  if (trimmed === '') throw badRequest(`\`${field}\` must not be empty`);
  if (trimmed.length > maxLength)
    throw badRequest(`\`${field}\` must be at most ${maxLength} characters`);
  return trimmed;
}

export function requiredInteger(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`\`${field}\` must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A path id: a positive 32-bit integer. */
export function caseId(text: string | undefined): number {
  if (!text || !/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2_147_483_647) {
    throw new HttpProblem(404, 'Not Found', 'no case with this id');
  }
  return Number(text);
}

/** An optional query-string value: absent, or one string of bounded length. */
export function queryString(value: unknown, name: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`\`${name}\` must be given once`);
  if (value.length > maxLength)
    throw badRequest(`\`${name}\` must be at most ${maxLength} characters`);
  return value;
}

/** The demo identity (`X-User`), also the session key of pins. */
export function userName(value: unknown, required: boolean): string | undefined {
  if (value === undefined || value === '') {
    if (required)
      throw new HttpProblem(
        401,
        'Unauthorized',
        'send the X-User header (any name: the demo has no real authentication)',
      );
    return undefined;
  }
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(value)) {
    throw badRequest('X-User must be 1-64 letters, digits or _.@-');
  }
  return value;
}
