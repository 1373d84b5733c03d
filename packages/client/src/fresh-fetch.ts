import {
  DEFAULT_STORAGE_KEY,
  memoryStorage,
  type TokenStorage,
  type WebStorageLike,
  webStorage,
} from './storage.js';
import { isNewer, readToken, type TokenInfo } from './token.js';

/** Header names of freshgate's wire contract. */
export const HEADER_TOKEN = 'X-Freshness-Token';
export const HEADER_READ_AFTER_WRITE = 'X-Read-After-Write';

/** Default BroadcastChannel name of `sync: true`. */
export const DEFAULT_CHANNEL = 'freshgate';
/** Default longest token lifetime accepted, seconds: the server's default `tokenTtl` (10 min). */
export const DEFAULT_MAX_TOKEN_TTL = 600;
/** Clock difference between client and server tolerated on a token's `exp`, seconds. */
const CLOCK_SKEW_SECONDS = 60;
const PROBLEM_TOKEN_REJECTED = 'https://freshgate.dev/problems/token-rejected';

/** Options of {@link createFreshFetch}. */
export interface FreshFetchOptions {
  /** The fetch to wrap. Default: `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /**
   * Origins (`'https://api.example.com'`) that receive the token and whose tokens are kept,
   * besides the page's own origin. Requests to any other origin carry no token and their
   * tokens are ignored: a third party neither learns the token nor replaces it. Outside a
   * browser (no page origin) at least one is required. Default: none.
   */
  origins?: readonly string[];
  /**
   * Longest token lifetime accepted, seconds: a token without a finite `exp`, or whose `exp`
   * lies further ahead than this (plus a minute of clock skew), is not kept. Set it to the
   * server's `tokenTtl` when that is longer. Default {@link DEFAULT_MAX_TOKEN_TTL}.
   */
  maxTokenTtl?: number;
  /**
   * Where the newest token lives: `'memory'` (default), `'sessionStorage'` (survives reloads
   * of the tab), a Web Storage object, or a custom {@link TokenStorage}.
   */
  persistence?: 'memory' | 'sessionStorage' | WebStorageLike | TokenStorage;
  /** Key in Web Storage. Default {@link DEFAULT_STORAGE_KEY} (`'freshgate.token'`). */
  storageKey?: string;
  /**
   * Share tokens between tabs (and workers) over a BroadcastChannel: `true` for
   * {@link DEFAULT_CHANNEL}, or a channel name. Default `false`.
   */
  sync?: boolean | string;
  /** Send `X-Read-After-Write: true` on every call. Default `false` (set it per call). */
  readAfterWrite?: boolean;
  /**
   * Another source of tokens consulted on every call, e.g. the current server request's
   * (`() => currentDb().freshness.forwardToken()`); the newer of it and the kept token is sent.
   */
  token?: () => string | null | undefined;
}

/** `RequestInit` plus freshgate's per-call options. */
export interface FreshRequestInit extends RequestInit {
  /** This call must see the client's own writes: sends `X-Read-After-Write: true`. */
  readAfterWrite?: boolean;
}

/** A `fetch` that carries freshness tokens. */
export interface FreshFetch {
  (input: string | URL | Request, init?: FreshRequestInit): Promise<Response>;
  /** The newest token received so far, or `null`. */
  readonly token: string | null;
  /** Offers a token (e.g. from a server-rendered page); kept only if newer. Returns whether it was. */
  offer(token: string | null | undefined): boolean;
  /** Forgets the token (e.g. on logout). */
  clear(): void;
  /** Closes the BroadcastChannel. */
  close(): void;
}

function pageOrigin(): string | null {
  const origin = (globalThis as { location?: { origin?: unknown } }).location?.origin;
  return typeof origin === 'string' && origin !== 'null' ? origin : null;
}

function allowedOrigins(options: FreshFetchOptions): ReadonlySet<string> {
  const allowed = new Set<string>();
  const page = pageOrigin();
  if (page !== null) allowed.add(page);
  for (const origin of options.origins ?? []) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new TypeError(`freshgate: origins: ${JSON.stringify(origin)} is not an origin URL`);
    }
    allowed.add(parsed.origin);
  }
  if (allowed.size === 0) {
    throw new TypeError(
      "freshgate: outside a browser there is no page origin: list the services' origins, e.g. createFreshFetch({ origins: ['http://billing:3000'] })",
    );
  }
  return allowed;
}

function requestUrl(input: string | URL | Request): URL | null {
  const href = input instanceof Request ? input.url : String(input);
  try {
    return new URL(href, (globalThis as { location?: { href?: string } }).location?.href);
  } catch {
    return null;
  }
}

/** Whether a 400 answer says the token sent was rejected (`strict` servers). */
async function tokenRejected(response: Response): Promise<boolean> {
  if (response.status !== 400) return false;
  if (!(response.headers.get('content-type') ?? '').includes('application/problem+json'))
    return false;
  try {
    const body = (await response.clone().json()) as { type?: unknown };
    return body?.type === PROBLEM_TOKEN_REJECTED;
  } catch {
    return false;
  }
}

function storageOf(options: FreshFetchOptions): TokenStorage {
  const p = options.persistence ?? 'memory';
  const key = options.storageKey ?? DEFAULT_STORAGE_KEY;
  if (p === 'memory') return memoryStorage();
  if (p === 'sessionStorage') {
    const storage = (globalThis as { sessionStorage?: WebStorageLike }).sessionStorage;
    if (storage === undefined) {
      throw new TypeError(
        "freshgate: persistence 'sessionStorage' needs a browser; use 'memory' here",
      );
    }
    return webStorage(storage, key);
  }
  if (typeof (p as WebStorageLike).getItem === 'function')
    return webStorage(p as WebStorageLike, key);
  if (typeof (p as TokenStorage).get === 'function') return p as TokenStorage;
  throw new TypeError(
    `freshgate: unknown persistence ${String(p)}: use 'memory' or 'sessionStorage'`,
  );
}

/**
 * Wraps `fetch` (browsers and Node ≥ 18) so that the newest freshness token is sent back on
 * every request to the page's origin and the configured `origins`: tokens from their responses
 * are compared by LSN and only a newer one replaces the kept one (responses arriving out of
 * order never move it backwards). Other origins neither receive the token nor set it. A token
 * without a finite expiry within `maxTokenTtl` is never kept; one a server rejects is dropped.
 *
 * @example
 * ```ts
 * const api = createFreshFetch({ persistence: 'sessionStorage', sync: true });
 * await api('/api/cases', { method: 'POST', body: JSON.stringify(draft) }); // token kept
 * const res = await api('/api/cases/42'); // sends it: never older than the write
 * await api('/api/inbox', { readAfterWrite: true }); // this read must see my writes
 * ```
 */
export function createFreshFetch(options: FreshFetchOptions = {}): FreshFetch {
  const baseFetch = options.fetch ?? globalThis.fetch;
  if (typeof baseFetch !== 'function') throw new TypeError('freshgate: no fetch to wrap');
  const allowed = allowedOrigins(options);
  const maxTtl = options.maxTokenTtl ?? DEFAULT_MAX_TOKEN_TTL;
  if (typeof maxTtl !== 'number' || !(maxTtl > 0) || !Number.isFinite(maxTtl)) {
    throw new TypeError(`freshgate: maxTokenTtl must be a number of seconds > 0, got ${maxTtl}`);
  }
  const storage = storageOf(options);
  const extra = options.token;
  let current: { token: string; info: TokenInfo } | null = null;

  /** The token's payload when it could be a live token of the server, else `null`. */
  function usable(token: string): TokenInfo | null {
    const info = readToken(token);
    if (info === null || !Number.isFinite(info.exp)) return null;
    const now = Date.now() / 1000;
    if (info.exp <= now || info.exp > now + maxTtl + CLOCK_SKEW_SECONDS) return null;
    return info;
  }

  const stored = storage.get();
  const storedInfo = stored === null ? null : usable(stored);
  if (stored !== null && storedInfo !== null) current = { token: stored, info: storedInfo };

  const channelName = options.sync === true ? DEFAULT_CHANNEL : options.sync || null;
  let channel: BroadcastChannel | null = null;
  if (channelName !== null && typeof BroadcastChannel === 'function') {
    channel = new BroadcastChannel(channelName);
    channel.onmessage = (event: MessageEvent) => {
      if (typeof event.data === 'string') keep(event.data, false);
    };
    // In Node an open channel would keep the process alive.
    (channel as { unref?: () => void }).unref?.();
  }

  function keep(token: string | null | undefined, broadcast: boolean): boolean {
    if (!token) return false;
    const info = usable(token);
    if (info === null || !isNewer(info, current?.info ?? null, Date.now())) return false;
    current = { token, info };
    storage.set(token);
    if (broadcast) channel?.postMessage(token);
    return true;
  }

  function outgoing(): string | null {
    // Another tab may have stored a newer token in shared storage.
    const fromStorage = storage.get();
    if (fromStorage !== null && fromStorage !== current?.token) keep(fromStorage, false);
    const other = extra?.();
    if (!other) return current?.token ?? null;
    const info = usable(other);
    if (info === null) return current?.token ?? null;
    return current === null || isNewer(info, current.info, Date.now()) ? other : current.token;
  }

  const freshFetch = async (input: string | URL | Request, init?: FreshRequestInit) => {
    const { readAfterWrite, ...rest } = init ?? {};
    const headers = new Headers(
      rest.headers ?? (input instanceof Request ? input.headers : undefined),
    );
    const url = requestUrl(input);
    // Only our own servers learn the token, and only they may replace it.
    const trusted = url !== null && allowed.has(url.origin);
    const token = trusted ? outgoing() : null;
    const sent = token !== null && !headers.has(HEADER_TOKEN);
    if (sent) headers.set(HEADER_TOKEN, token);
    if (readAfterWrite ?? options.readAfterWrite) headers.set(HEADER_READ_AFTER_WRITE, 'true');
    const response = await baseFetch(input, { ...rest, headers });
    // After a redirect the answer comes from where it ended.
    const from = response.url === '' ? url : requestUrl(response.url);
    if (!trusted || from === null || !allowed.has(from.origin)) return response;
    if (sent && token === current?.token && (await tokenRejected(response))) {
      // The server refused the kept token (expired, re-keyed, another cluster): sending it
      // again would only be refused again.
      current = null;
      storage.remove();
    }
    keep(response.headers.get(HEADER_TOKEN), true);
    return response;
  };

  return Object.defineProperties(freshFetch, {
    token: { get: () => current?.token ?? null, enumerable: true },
    offer: { value: (token: string | null | undefined) => keep(token, true) },
    clear: {
      value: () => {
        current = null;
        storage.remove();
      },
    },
    close: { value: () => channel?.close() },
  }) as FreshFetch;
}
