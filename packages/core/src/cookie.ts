/** Options of the freshness cookie. */
export interface CookieOptions {
  /** Cookie name. Default {@link DEFAULT_COOKIE_NAME}. */
  name?: string;
  /** Default `'/'`. */
  path?: string;
  /** Default: none (host-only cookie). */
  domain?: string;
}

/** Default name of the freshness cookie. */
export const DEFAULT_COOKIE_NAME = 'fg_fresh';

const TOKEN_CHARS = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const VALUE_CHARS = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

/** Normalised cookie settings with the constant part of `Set-Cookie` precomputed. */
export interface CookieSettings {
  readonly name: string;
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
  return { name, attributes: `${attributes}; HttpOnly; SameSite=Lax` };
}

/** The `Set-Cookie` value carrying `token`. */
export function serializeCookie(
  settings: CookieSettings,
  token: string,
  maxAgeSeconds: number,
  secure: boolean,
): string {
  return `${settings.name}=${token}; Max-Age=${maxAgeSeconds}${settings.attributes}${secure ? '; Secure' : ''}`;
}

/** The value of cookie `name` in a raw `Cookie` request header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header === '') return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
        value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}
