import type { BeginInput } from './engine.js';
import {
  HEADER_LAG_MS,
  HEADER_ROUTE,
  HEADER_TOKEN,
  type ResponseSink,
} from './request-freshness.js';

/** Node's request header object (`req.headers` in Express and Fastify): lower-case names. */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The response headers freshgate sets that browser code on another origin must be able to read. */
export const EXPOSED_HEADERS: readonly string[] = [HEADER_TOKEN, HEADER_ROUTE, HEADER_LAG_MS];

const EXPOSE = 'Access-Control-Expose-Headers';
const EXPOSED_LIST = EXPOSED_HEADERS.join(', ');

/**
 * What a framework response offers for header writing. `append` must add a value next to the
 * existing ones and `remove` drop every value of a header (both only used for `Set-Cookie`, so
 * the application's cookies survive while the freshness cookie is replaced).
 */
export interface HeaderTarget {
  get(name: string): unknown;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  remove(name: string): void;
}

/** The name of the cookie a `Set-Cookie` value sets. */
function cookieName(setCookie: unknown): string {
  const value = String(setCookie);
  const eq = value.indexOf('=');
  return (eq === -1 ? value : value.slice(0, eq)).trim();
}

/**
 * Sets a `Set-Cookie` value, replacing an earlier value for the same cookie (a request that
 * issues several tokens sends one cookie, the newest) and keeping every other cookie.
 */
function setCookie(target: HeaderTarget, value: string): void {
  const current = target.get('Set-Cookie');
  const values = Array.isArray(current) ? current : current == null ? [] : [current];
  const name = cookieName(value);
  const others = values.filter((v) => cookieName(v) !== name);
  if (others.length !== values.length) {
    target.remove('Set-Cookie');
    for (const other of others) target.append('Set-Cookie', String(other));
  }
  target.append('Set-Cookie', value);
}

function first(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * The wire-contract part of {@link BeginInput} read from request headers: the
 * `X-Freshness-Token` header, the raw `Cookie` header (the engine reads its cookie from it) and
 * `X-Read-After-Write`.
 *
 * @example
 * ```ts
 * const input = { ...requestInput(req.headers), sessionKey, secure, sink };
 * const freshness = await engine.begin(input);
 * ```
 */
export function requestInput(
  headers: IncomingHeaders,
): Pick<BeginInput, 'token' | 'cookie' | 'readAfterWrite'> {
  return {
    token: first(headers['x-freshness-token']),
    cookie: first(headers.cookie),
    readAfterWrite: headers['x-read-after-write'] as BeginInput['readAfterWrite'],
  };
}

/**
 * The whole {@link BeginInput} of a request, built as one object literal: an object given its
 * properties one at a time after creation changes shape as it grows.
 */
export function beginInput(
  headers: IncomingHeaders,
  contract: BeginInput['contract'],
  sessionKey: BeginInput['sessionKey'],
  secure: BeginInput['secure'],
  sink: ResponseSink,
): BeginInput {
  return {
    token: first(headers['x-freshness-token']),
    cookie: first(headers.cookie),
    readAfterWrite: headers['x-read-after-write'] as BeginInput['readAfterWrite'],
    contract,
    sessionKey,
    secure,
    sink,
  };
}

/**
 * `current` (an `Access-Control-Expose-Headers` value, possibly set by the application's CORS
 * middleware) with freshgate's headers added, or `null` when it already lists them all.
 * Existing entries, including `*`, are kept as they are.
 *
 * @example
 * ```ts
 * mergeExposeHeaders('X-Request-Id'); // 'X-Request-Id, X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms'
 * ```
 */
export function mergeExposeHeaders(current: unknown): string | null {
  const entries: string[] = [];
  const values = Array.isArray(current) ? current : current == null ? [] : [current];
  for (const value of values) {
    for (const part of String(value).split(',')) {
      const name = part.trim();
      if (name !== '') entries.push(name);
    }
  }
  const present = new Set(entries.map((e) => e.toLowerCase()));
  const missing = EXPOSED_HEADERS.filter((h) => !present.has(h.toLowerCase()));
  return missing.length === 0 ? null : [...entries, ...missing].join(', ');
}

/**
 * The {@link ResponseSink} an adapter passes to `begin`: `Set-Cookie` is appended next to the
 * application's cookies, replacing only an earlier value of the same cookie, and every freshgate header is also listed in
 * `Access-Control-Expose-Headers`, merged into whatever the application's CORS setup put
 * there, so that cross-origin browser code can read it.
 *
 * @example
 * ```ts
 * const sink = responseSink({
 *   get: (name) => res.getHeader(name),
 *   set: (name, value) => res.setHeader(name, value),
 *   append: (name, value) => res.appendHeader(name, value),
 *   remove: (name) => res.removeHeader(name),
 * });
 * ```
 */
export function responseSink(target: HeaderTarget): ResponseSink {
  return new HeaderSink(target);
}

class HeaderSink implements ResponseSink {
  readonly #target: HeaderTarget;
  // The Access-Control-Expose-Headers value this sink last found complete or wrote: a request
  // sets several exposed headers, and the list needs merging only when someone changed it.
  #exposed: unknown;

  constructor(target: HeaderTarget) {
    this.#target = target;
  }

  setHeader(name: string, value: string): void {
    const target = this.#target;
    if (name === 'Set-Cookie') {
      setCookie(target, value);
      return;
    }
    target.set(name, value);
    if (!EXPOSED_HEADERS.includes(name)) return;
    const current = target.get(EXPOSE);
    if (current !== undefined && current === this.#exposed) return;
    const merged = current == null ? EXPOSED_LIST : mergeExposeHeaders(current);
    if (merged !== null) target.set(EXPOSE, merged);
    this.#exposed = merged ?? current;
  }
}
