import { createHash, createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import {
  CompactSign,
  type CryptoKey,
  compactVerify,
  decodeProtectedHeader,
  errors,
  importJWK,
  type JWK,
  type KeyObject,
} from 'jose';
import { checkOptions } from './check-options.js';
import { type Clock, coarseNow, systemClock } from './clock.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError, type TokenRejectionReason } from './errors.js';
import { LruCache } from './lru-cache.js';
import { formatLsn, tryParseLsn } from './lsn.js';

/** Signature algorithms a freshness token may use. `none` and RSA are never accepted. */
export type TokenAlgorithm = 'HS256' | 'EdDSA' | 'ES256';

/** A shared secret (HS256), at least 32 bytes. */
export interface SecretTokenKey {
  /** Key id put in the `kid` header; default: derived from a hash of the secret. */
  kid?: string;
  alg?: 'HS256';
  secret: string | Uint8Array;
}

/** An asymmetric key pair (EdDSA or ES256). Without `privateKey` the key only verifies. */
export interface AsymmetricTokenKey {
  kid: string;
  alg: 'EdDSA' | 'ES256';
  publicKey: CryptoKey | KeyObject | JWK;
  privateKey?: CryptoKey | KeyObject | JWK;
}

/** One entry of a key set. */
export type TokenKey = SecretTokenKey | AsymmetricTokenKey;

/** Default `typ` header of freshness tokens. */
export const DEFAULT_TOKEN_TYP = 'freshgate+jwt';
/** Default token lifetime: 10 minutes. */
export const DEFAULT_TOKEN_TTL: Duration = '10m';
/** Default maximum token length in characters; longer tokens are rejected unparsed. */
export const DEFAULT_TOKEN_MAX_LENGTH = 1024;
/** Default number of verified tokens kept in the cache. */
export const DEFAULT_TOKEN_CACHE_SIZE = 10_000;
/** Minimum HS256 secret length in bytes (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES = 32;

/** Options of {@link createTokenCodec}. Give `secret` or `keys`. */
export interface TokenCodecOptions {
  /** Shorthand for `keys: [{ secret }]` (HS256). */
  secret?: string | Uint8Array;
  /** Key set; the first key with a private part signs (put the newest first), any listed key verifies. */
  keys?: readonly TokenKey[];
  /** Accepted `alg` values. Default: the algorithms of `keys`. */
  algorithms?: readonly TokenAlgorithm[];
  /** Required `typ` header. Default `'freshgate+jwt'`. */
  typ?: string;
  /** Token lifetime. Default `'10m'`. */
  ttl?: Duration;
  /** Longest accepted token. Default 1024. */
  maxLength?: number;
  /** Verified tokens cached (LRU, honouring `exp`); 0 disables. Default 10 000. */
  cacheSize?: number;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/** What a token states. */
export interface TokenClaims {
  /** The observed LSN. */
  lsn: bigint;
  /** Cluster id (system identifier + timeline). */
  cid: string;
  /** Hash of the session key, when the token was issued to a session. */
  sid?: string | undefined;
  /**
   * The replica (`replica:<name>`) a monotonic/causal read of the client ran on, when the read
   * was not bounded by a position measured after it: the client saw at most what that replica
   * had replayed when the token was issued, and at least `lsn`.
   */
  node?: string | undefined;
}

/** A trusted token. */
export interface VerifiedToken {
  readonly ok: true;
  readonly lsn: bigint;
  readonly cid: string;
  readonly sid: string | undefined;
  /** The replica the client last read on without a bound (see {@link TokenClaims.node}). */
  readonly node?: string | undefined;
  /** Issued-at, seconds since the epoch. */
  readonly iat: number;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

/** An untrusted token and why. */
export interface RejectedToken {
  readonly ok: false;
  readonly reason: TokenRejectionReason;
}

/** Result of {@link TokenCodec.verify}. */
export type VerifyResult = VerifiedToken | RejectedToken;

/** A freshly signed token. */
export interface SignedToken {
  readonly token: string;
  readonly lsn: bigint;
  /** Issued-at, seconds since the epoch. */
  readonly iat: number;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  /** Lifetime in seconds (the cookie's `Max-Age`). */
  readonly maxAgeSeconds: number;
}

/** Signs and verifies freshness tokens. Build with {@link createTokenCodec}. */
export interface TokenCodec {
  /** Token lifetime in ms. */
  readonly ttlMs: number;
  /** Signs `{ v: 1, lsn, cid, sid?, node?, iat, exp }` with the newest signing key. */
  sign(claims: TokenClaims): Promise<SignedToken>;
  /**
   * Verifies a client-supplied token. Never throws: any problem is a {@link RejectedToken}.
   * With `expect.cid`, a token of another cluster is `foreign-cluster`.
   */
  verify(token: unknown, expect?: { cid?: string | null | undefined }): Promise<VerifyResult>;
  /**
   * The cached verification of `token`, or `undefined` when it is not cached; lets callers
   * skip an `await` on the hot path.
   */
  verifyCached(
    token: string,
    expect?: { cid?: string | null | undefined },
  ): VerifyResult | undefined;
  /**
   * {@link verify} without waiting, wherever that is possible: a cached token, a token whose
   * form or header is refused, and an HS256 token (an HMAC is checked synchronously) have
   * their result at once. `undefined` only for an EdDSA or ES256 token not verified before:
   * call {@link verify} for it.
   */
  verifyNow(token: string, expect?: { cid?: string | null | undefined }): VerifyResult | undefined;
}

interface ImportedKey {
  kid: string;
  alg: TokenAlgorithm;
  verifyKey: CryptoKey | KeyObject;
  signKey: CryptoKey | KeyObject | undefined;
  /** HS256: the secret for `node:crypto`, which signs and verifies synchronously (WebCrypto's HMAC is a job on the thread pool). */
  hmac?: ReturnType<typeof createSecretKey>;
}

const REJECTED: Record<TokenRejectionReason, RejectedToken> = Object.freeze({
  malformed: Object.freeze({ ok: false, reason: 'malformed' }),
  oversize: Object.freeze({ ok: false, reason: 'oversize' }),
  signature: Object.freeze({ ok: false, reason: 'signature' }),
  expired: Object.freeze({ ok: false, reason: 'expired' }),
  algorithm: Object.freeze({ ok: false, reason: 'algorithm' }),
  typ: Object.freeze({ ok: false, reason: 'typ' }),
  'foreign-cluster': Object.freeze({ ok: false, reason: 'foreign-cluster' }),
  'unknown-kid': Object.freeze({ ok: false, reason: 'unknown-kid' }),
  claims: Object.freeze({ ok: false, reason: 'claims' }),
} as const);

const ALGORITHMS: readonly TokenAlgorithm[] = ['HS256', 'EdDSA', 'ES256'];
const OPTION_KEYS = [
  'secret',
  'keys',
  'algorithms',
  'typ',
  'ttl',
  'maxLength',
  'cacheSize',
  'clock',
];
const MAX_CLAIM_LENGTH = 128;
/** Characters of the base64url signature of each algorithm (32 or 64 bytes, unpadded). */
const SIGNATURE_LENGTH: Record<TokenAlgorithm, number> = { HS256: 43, EdDSA: 86, ES256: 86 };
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether `segment` (base64url characters only) is the one unpadded encoding of its bytes:
 * a decoder ignores the unused low bits of the last character, so each token would otherwise
 * have several spellings, each a separate cache entry costing a full verify.
 */
function canonicalSegment(segment: string): boolean {
  const rest = segment.length % 4;
  if (rest === 0) return true;
  if (rest === 1) return false;
  const last = BASE64URL.indexOf(segment.charAt(segment.length - 1));
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0;
}

/**
 * Whether `token` is in canonical compact form: three base64url segments, no padding, no
 * whitespace, no unused bits set. Cheap, and checked before any cache lookup or decoding.
 */
function isCanonical(token: string): boolean {
  if (!COMPACT.test(token)) return false;
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  return (
    canonicalSegment(token.slice(0, first)) &&
    canonicalSegment(token.slice(first + 1, second)) &&
    canonicalSegment(token.slice(second + 1))
  );
}
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function secretBytes(secret: string | Uint8Array, option: string): Uint8Array {
  const bytes = typeof secret === 'string' ? encoder.encode(secret) : secret;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < MIN_SECRET_BYTES) {
    throw new ConfigError(
      option,
      `an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes; generate one with \`openssl rand -base64 32\``,
    );
  }
  return bytes;
}

function isJwk(key: unknown): key is JWK {
  return (
    key !== null &&
    typeof key === 'object' &&
    typeof (key as { kty?: unknown }).kty === 'string' &&
    !('type' in key && 'algorithm' in key)
  );
}

async function importAsymmetric(
  key: CryptoKey | KeyObject | JWK,
  alg: TokenAlgorithm,
  option: string,
): Promise<CryptoKey | KeyObject> {
  try {
    if (isJwk(key)) {
      const imported = await importJWK(key, alg);
      if (imported instanceof Uint8Array) throw new Error('a symmetric JWK cannot be used here');
      return imported;
    }
    return key;
  } catch (cause) {
    throw new ConfigError(option, `cannot import the ${alg} key: ${(cause as Error).message}`, {
      cause,
    });
  }
}

async function importKeys(options: TokenCodecOptions): Promise<ImportedKey[]> {
  const specs: readonly TokenKey[] =
    options.keys ?? (options.secret !== undefined ? [{ secret: options.secret }] : []);
  if (options.keys !== undefined && options.secret !== undefined) {
    throw new ConfigError('secret', 'give either `secret` or `keys`, not both');
  }
  if (specs.length === 0) {
    throw new ConfigError('secret', 'a token key is required: pass `secret` (HS256) or `keys`');
  }
  const imported: ImportedKey[] = [];
  for (const [i, spec] of specs.entries()) {
    const option = options.keys ? `keys[${i}]` : 'secret';
    if ('secret' in spec) {
      if (spec.alg !== undefined && spec.alg !== 'HS256') {
        throw new ConfigError(
          `${option}.alg`,
          'a `secret` key is HS256; use publicKey/privateKey for EdDSA or ES256',
        );
      }
      const bytes = secretBytes(spec.secret, options.keys ? `${option}.secret` : 'secret');
      // Imported once, and used by node:crypto's HMAC, which needs no promise and no job on
      // the thread pool.
      const key = createSecretKey(bytes);
      const kid =
        spec.kid ?? `hs-${createHash('sha256').update(bytes).digest('base64url').slice(0, 10)}`;
      imported.push({
        kid,
        alg: 'HS256',
        verifyKey: key,
        signKey: key,
        hmac: key,
      });
    } else {
      if (spec.alg !== 'EdDSA' && spec.alg !== 'ES256') {
        throw new ConfigError(
          `${option}.alg`,
          `expected 'EdDSA' or 'ES256', got ${JSON.stringify(spec.alg)}`,
        );
      }
      if (typeof spec.kid !== 'string' || spec.kid === '') {
        throw new ConfigError(`${option}.kid`, 'asymmetric keys need a `kid` for rotation');
      }
      imported.push({
        kid: spec.kid,
        alg: spec.alg,
        verifyKey: await importAsymmetric(spec.publicKey, spec.alg, `${option}.publicKey`),
        signKey:
          spec.privateKey === undefined
            ? undefined
            : await importAsymmetric(spec.privateKey, spec.alg, `${option}.privateKey`),
      });
    }
  }
  const kids = new Set<string>();
  for (const key of imported) {
    if (kids.has(key.kid)) throw new ConfigError('keys', `kid "${key.kid}" is used twice`);
    kids.add(key.kid);
  }
  return imported;
}

function readClaims(payload: Uint8Array): VerifiedToken | undefined {
  let claims: unknown;
  try {
    claims = JSON.parse(decoder.decode(payload));
  } catch {
    return undefined;
  }
  if (claims === null || typeof claims !== 'object') return undefined;
  const { v, lsn, cid, sid, node, iat, exp } = claims as Record<string, unknown>;
  const parsed = tryParseLsn(lsn);
  if (
    v !== 1 ||
    parsed === undefined ||
    typeof cid !== 'string' ||
    cid === '' ||
    cid.length > MAX_CLAIM_LENGTH ||
    (sid !== undefined && (typeof sid !== 'string' || sid.length > MAX_CLAIM_LENGTH)) ||
    (node !== undefined &&
      (typeof node !== 'string' || node === '' || node.length > MAX_CLAIM_LENGTH)) ||
    !Number.isSafeInteger(iat) ||
    !Number.isSafeInteger(exp) ||
    (exp as number) <= (iat as number)
  ) {
    return undefined;
  }
  return Object.freeze({
    ok: true as const,
    lsn: parsed,
    cid,
    sid: sid as string | undefined,
    node: node as string | undefined,
    iat: iat as number,
    exp: exp as number,
  });
}

function checkCluster(
  token: VerifyResult,
  expect: { cid?: string | null | undefined } | undefined,
): VerifyResult {
  const cid = expect?.cid;
  return token.ok && typeof cid === 'string' && token.cid !== cid
    ? REJECTED['foreign-cluster']
    : token;
}

/**
 * The verified-token cache's key for `token`: its last 8 characters, folded into an int32 (a
 * signed token ends with its signature, random characters). A Map finds a number without
 * hashing a string: each request's token is a string the request parser just made, whose hash
 * V8 would compute over all its characters. Tokens that share a key are told apart by the
 * whole token the entry keeps.
 */
function cacheKey(token: string): number {
  let key = 0;
  for (let i = Math.max(0, token.length - 8); i < token.length; i++)
    key = (key * 31 + token.charCodeAt(i)) | 0;
  return key;
}

/**
 * Creates the codec of signed, cluster-bound, expiring freshness tokens (compact JWS).
 * Keys are imported once here; verified tokens are cached (bounded LRU honouring `exp`)
 * because a client repeats the same token until its next write.
 *
 * @throws {ConfigError} on a short secret, unknown algorithm, missing kid or bad option.
 * @example
 * ```ts
 * const codec = await createTokenCodec({ secret: process.env.FRESHGATE_SECRET! });
 * const { token } = await codec.sign({ lsn: parseLsn('16/B374D848'), cid: '7301/1' });
 * const result = await codec.verify(token, { cid: '7301/1' });
 * if (result.ok) result.lsn; // 0x16B374D848n
 * else result.reason; // e.g. 'expired'
 * ```
 */
export async function createTokenCodec(
  options: TokenCodecOptions,
  /** @internal Where the engine nests these options (`token.`), so that errors name them as the user wrote them. */
  prefix = '',
): Promise<TokenCodec> {
  checkOptions(options, OPTION_KEYS, 'options');
  const clock = options.clock ?? systemClock;
  const typ = options.typ ?? DEFAULT_TOKEN_TYP;
  if (typeof typ !== 'string' || typ === '')
    throw new ConfigError(`${prefix}typ`, 'expected a non-empty string');
  const ttlMs = parseDuration(options.ttl ?? DEFAULT_TOKEN_TTL, `${prefix}ttl`);
  if (ttlMs < 1000) throw new ConfigError(`${prefix}ttl`, 'must be at least 1s');
  const ttlSeconds = Math.ceil(ttlMs / 1000);
  const maxLength = options.maxLength ?? DEFAULT_TOKEN_MAX_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 64) {
    throw new ConfigError(
      `${prefix}maxLength`,
      `expected an integer >= 64, got ${String(maxLength)}`,
    );
  }
  const cacheSize = options.cacheSize ?? DEFAULT_TOKEN_CACHE_SIZE;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) {
    throw new ConfigError(
      `${prefix}cacheSize`,
      `expected an integer >= 0, got ${String(cacheSize)}`,
    );
  }

  const keys = await importKeys(options);
  const algorithms = options.algorithms ?? [...new Set(keys.map((k) => k.alg))];
  for (const alg of algorithms) {
    if (!ALGORITHMS.includes(alg)) {
      throw new ConfigError(
        `${prefix}algorithms`,
        `unsupported algorithm ${JSON.stringify(alg)}; allowed: ${ALGORITHMS.join(', ')}`,
      );
    }
  }
  for (const key of keys) {
    if (!algorithms.includes(key.alg)) {
      throw new ConfigError(
        `${prefix}algorithms`,
        `key "${key.kid}" uses ${key.alg}, which is not in the allow-list`,
      );
    }
  }
  const byKid = new Map(keys.map((k) => [k.kid, k]));
  const signer = keys.find((k) => k.signKey !== undefined);
  // The signer's protected header never changes: encoded once, byte for byte what jose's
  // CompactSign writes for it.
  const signingHeader =
    signer === undefined
      ? ''
      : Buffer.from(JSON.stringify({ alg: signer.alg, kid: signer.kid, typ })).toString(
          'base64url',
        );
  // The entry keeps the whole token, compared on every hit: a token whose key is a cached
  // token's (the same last characters) is a miss.
  const cache = new LruCache<number, { token: string; verified: VerifiedToken }>(cacheSize);
  const remember = (token: string, verified: VerifiedToken) =>
    cache.set(cacheKey(token), { token, verified });
  const inFlight = new Map<string, Promise<VerifiedToken | RejectedToken>>();

  // A cached token's expiry is checked against the process clock read at most every 100 ms
  // (`coarseNow`): a token honoured a fraction of a second past its `exp` only raises what the
  // request's reads need, and in section 7's profile a clock read cost as much as the rest of
  // the lookup. A clock given in the options (tests, simulations) is read each time.
  const expiryNow = clock === systemClock ? coarseNow : () => clock.now();

  function lookup(token: string, expect: { cid?: string | null | undefined } | undefined) {
    const key = cacheKey(token);
    const entry = cache.get(key);
    if (entry === undefined || entry.token !== token) return undefined;
    const cached = entry.verified;
    if (cached.exp * 1000 <= expiryNow()) {
      cache.delete(key);
      return REJECTED.expired;
    }
    return checkCluster(cached, expect);
  }

  const codec: TokenCodec = {
    ttlMs,

    async sign(claims) {
      if (!signer) {
        throw new ConfigError(
          'keys',
          'no key has a privateKey, so this codec can only verify tokens',
        );
      }
      const iat = Math.floor(clock.now() / 1000);
      const exp = iat + ttlSeconds;
      const payload: Record<string, unknown> = {
        v: 1,
        lsn: formatLsn(claims.lsn),
        cid: claims.cid,
      };
      if (claims.sid !== undefined) payload.sid = claims.sid;
      if (claims.node !== undefined) payload.node = claims.node;
      payload.iat = iat;
      payload.exp = exp;
      let token: string;
      if (signer.hmac !== undefined) {
        // HS256 (RFC 7515 compact serialization): the same bytes as jose, without a promise
        // and a thread-pool job per token.
        const input = `${signingHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
        token = `${input}.${createHmac('sha256', signer.hmac).update(input).digest('base64url')}`;
      } else {
        token = await new CompactSign(encoder.encode(JSON.stringify(payload)))
          .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ })
          .sign(signer.signKey as CryptoKey | KeyObject);
      }
      // The client sends this token back on its next requests: verifying it then is a cache hit.
      remember(
        token,
        Object.freeze({
          ok: true as const,
          lsn: claims.lsn,
          cid: claims.cid,
          sid: claims.sid,
          node: claims.node,
          iat,
          exp,
        }),
      );
      return { token, lsn: claims.lsn, iat, exp, maxAgeSeconds: ttlSeconds };
    },

    verifyCached,
    verifyNow,

    async verify(token, expect) {
      const now = screen(token, expect);
      if (!('kid' in now)) return now;
      // Concurrent requests that carry the same new token (a client's parallel fetches after a
      // write) share one verification.
      const text = token as string;
      let pending = inFlight.get(text);
      if (pending === undefined) {
        const settled = () => inFlight.delete(text);
        pending = verifyAsymmetric(text, now).then((payload) => accept(text, payload));
        inFlight.set(text, pending);
        pending.then(settled, settled);
      }
      return checkCluster(await pending, expect);
    },
  };
  return codec;

  function verifyCached(
    token: string,
    expect: { cid?: string | null | undefined } | undefined,
  ): VerifyResult | undefined {
    if (token.length > maxLength) return REJECTED.oversize;
    // Only canonical tokens are ever cached: the form needs checking on a miss only.
    const cached = lookup(token, expect);
    if (cached !== undefined) return cached;
    return isCanonical(token) ? undefined : REJECTED.malformed;
  }

  function verifyNow(
    token: string,
    expect: { cid?: string | null | undefined } | undefined,
  ): VerifyResult | undefined {
    const now = screen(token, expect);
    return 'kid' in now ? undefined : now;
  }

  /**
   * The result of `token` where it needs no waiting (cached, refused by its form or header, or
   * HS256), else the EdDSA/ES256 key to verify it with: its header is read once either way.
   */
  function screen(
    token: unknown,
    expect: { cid?: string | null | undefined } | undefined,
  ): VerifyResult | ImportedKey {
    if (typeof token !== 'string' || token === '') return REJECTED.malformed;
    const known = verifyCached(token, expect);
    if (known !== undefined) return known;
    const key = keyFor(token);
    if (!('kid' in key) || key.hmac === undefined) return key;
    return checkCluster(accept(token, verifyHmac(token, key.hmac)), expect);
  }

  /**
   * The key that may have signed `token` (canonical, not cached), or why none may: the
   * header is read once, and a key is bound to its algorithm, so an HS256 token "signed" with
   * an ES256 key's public bytes (algorithm confusion) never reaches a verifier.
   */
  function keyFor(token: string): ImportedKey | RejectedToken {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return REJECTED.malformed;
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg)) {
      return REJECTED.algorithm;
    }
    if (header.typ !== typ) return REJECTED.typ;
    const key = typeof header.kid === 'string' ? byKid.get(header.kid) : undefined;
    if (!key) return REJECTED['unknown-kid'];
    if (key.alg !== alg) return REJECTED.algorithm;
    // Freshgate never signs with critical extensions or an unencoded payload (RFC 7797): a
    // token that asks for either was not made here, whichever verifier would check it.
    if ('crit' in header || 'b64' in header) return REJECTED.malformed;
    if (token.length - token.lastIndexOf('.') - 1 !== SIGNATURE_LENGTH[key.alg])
      return REJECTED.malformed;
    return key;
  }

  /** The claims of an HS256 token whose signature holds (compared in constant time). */
  function verifyHmac(
    token: string,
    secret: ReturnType<typeof createSecretKey>,
  ): Uint8Array | RejectedToken {
    const dot = token.lastIndexOf('.');
    const expected = createHmac('sha256', secret).update(token.slice(0, dot)).digest();
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return REJECTED.signature;
    return Buffer.from(token.slice(token.indexOf('.') + 1, dot), 'base64url');
  }

  async function verifyAsymmetric(
    token: string,
    key: ImportedKey,
  ): Promise<Uint8Array | RejectedToken> {
    try {
      return (await compactVerify(token, key.verifyKey, { algorithms: [key.alg] })).payload;
    } catch (err) {
      if (err instanceof errors.JWSSignatureVerificationFailed) return REJECTED.signature;
      if (err instanceof errors.JOSEAlgNotAllowed) return REJECTED.algorithm;
      return REJECTED.malformed;
    }
  }

  /** The result of a checked signature: its claims read and, when valid, cached. */
  function accept(
    token: string,
    payload: Uint8Array | RejectedToken,
  ): VerifiedToken | RejectedToken {
    if (!(payload instanceof Uint8Array)) return payload;
    const verified = readClaims(payload);
    if (!verified) return REJECTED.claims;
    if (verified.exp * 1000 <= clock.now()) return REJECTED.expired;
    remember(token, verified);
    return verified;
  }
}
