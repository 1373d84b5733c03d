/** Options of the freshness cookie. */
export interface CookieOptions {
  /**
   * Cookie name. Default `'fg_fresh'`, sent as `__Host-fg_fresh` on https when
   * `path` is `'/'` and there is no `domain` (a sibling subdomain or a plain-http page cannot
   * set a `__Host-` cookie).
   */
  name?: string;
  /** Default `'/'`. */
  path?: string;
  /** Default: none (host-only cookie). */
  domain?: string;
}

/** Default name of the freshness cookie. */
export const DEFAULT_COOKIE_NAME = 'fg_fresh';
/**
 * Most cookie values of the freshness cookie read from one request. A browser sends one per
 * (domain, path) it holds; more than this is not a browser's doing, and such a request is
 * routed as if its LSN were unknown.
 */
export const MAX_COOKIE_VALUES = 8;

const HOST_PREFIX = '__Host-';
const TOKEN_CHARS = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const VALUE_CHARS = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

/** Normalised cookie settings with the constant part of `Set-Cookie` precomputed. */
export interface CookieSettings {
  /** The name on plain-http responses. */
  readonly name: string;
  /** The name on https responses (`__Host-` prefixed by default). */
  readonly secureName: string;
  /** Every name the request's cookie is read under. */
  readonly names: readonly string[];
  /** `; Path=/; HttpOnly; SameSite=Lax` (plus Domain), appended after Max-Age. */
  readonly attributes: string;
}

/** Validates cookie options once. Throws a plain message for the engine to wrap. */
export function cookieSettings(options: CookieOptions): CookieSettings | string {
  const name = options.name ?? DEFAULT_COOKIE_NAME;
  if (!TOKEN_CHARS.test(name)) return `invalid cookie name ${JSON.stringify(name)}`;
  const path = options.path ?? '/';
  if (!VALUE_CHARS.test(path) || path.includes(';'))
    return `invalid cookie path ${JSON.stringify(path)}`;
  let attributes = `; Path=${path}`;
  if (options.domain !== undefined) {
    if (!VALUE_CHARS.test(options.domain))
      return `invalid cookie domain ${JSON.stringify(options.domain)}`;
    attributes += `; Domain=${options.domain}`;
  }
  const prefixed =
    options.name === undefined && path === '/' && options.domain === undefined
      ? HOST_PREFIX + name
      : name;
  return {
    name,
    secureName: prefixed,
    names: prefixed === name ? [name] : [prefixed, name],
    attributes: `${attributes}; HttpOnly; SameSite=Lax`,
  };
}

/** The `Set-Cookie` value carrying `token`. */
export function serializeCookie(
  settings: CookieSettings,
  token: string,
  maxAgeSeconds: number,
  secure: boolean,
): string {
  const name = secure ? settings.secureName : settings.name;
  return `${name}=${token}; Max-Age=${maxAgeSeconds}${settings.attributes}${secure ? '; Secure' : ''}`;
}

/** The `Set-Cookie` value that deletes the cookie `name` (a rejected token the client cannot drop). */
export function clearCookie(settings: CookieSettings, name: string, secure: boolean): string {
  return `${name}=; Max-Age=0${settings.attributes}${secure || name.startsWith(HOST_PREFIX) ? '; Secure' : ''}`;
}

/** Cookie values found by {@link readCookies}. */
export interface FoundCookie {
  readonly name: string;
  readonly value: string;
}

/**
 * Every value of the cookies `names` in a raw `Cookie` request header, in header order, at
 * most `max` of them; `overflow` says more were there. One pass over the header: a hostile
 * header costs time linear in its length.
 */
export function readCookies(
  header: string | undefined,
  names: readonly string[],
  max: number = MAX_COOKIE_VALUES,
): { values: FoundCookie[]; overflow: boolean } {
  const values: FoundCookie[] = [];
  if (typeof header !== 'string' || header === '') return { values, overflow: false };
  const length = header.length;
  let start = 0;
  // `eq` only moves forward: a header of `;;;;` with no `=` is not rescanned per segment.
  let eq = -1;
  while (start < length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = length;
    if (eq < start) {
      eq = header.indexOf('=', start);
      if (eq === -1) break;
    }
    if (eq < end) {
      const name = header.slice(start, eq).trim();
      if (names.includes(name)) {
        if (values.length === max) return { values, overflow: true };
        let value = header.slice(eq + 1, end).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
          value = value.slice(1, -1);
        values.push({ name, value });
      }
    }
    start = end + 1;
  }
  return { values, overflow: false };
}

/** The first value of cookie `name` in a raw `Cookie` request header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  return readCookies(header, [name], 1).values[0]?.value;
}

/** Whether a request's `secure` (a flag, or a function asked when a cookie is written) holds. */
export function isSecure(secure: boolean | (() => boolean) | undefined): boolean {
  return typeof secure === 'function' ? secure() : secure === true;
}
