import { createHmac, hkdfSync, KeyObject, randomBytes } from 'node:crypto';
import { ConfigError } from './errors.js';
import type { TokenKey } from './token-codec.js';

const INFO = 'freshgate sid';
/** Session keys a hasher remembers the hash of, at most. */
const REMEMBERED = 4096;
/** Longer session keys are hashed every time (what the hasher holds stays under about 1 MB). */
const REMEMBERED_KEY_LENGTH = 128;

/**
 * A session-key hash keyed with `secret` (HMAC-SHA-256 under a key derived from it by HKDF,
 * base64url, first 22 characters: 128 bits). Raw session identifiers never reach the pin store
 * or a token's `sid`, and without the secret a `sid` cannot be matched against guessed keys
 * (user ids, e-mail addresses). The engine builds one from its token key; use this to compute
 * the same values elsewhere, or to pass your own `hashSessionKey`.
 *
 * The hasher remembers the hashes of the last 4,096 keys of up to 128 characters it was given:
 * those raw keys stay in the process's memory (as the requests that carried them did) until
 * newer ones push them out.
 *
 * @example
 * ```ts
 * const hash = sessionKeyHasher(process.env.FRESHGATE_SECRET!);
 * hash('sess:4f2a...'); // 'm2dZr0...' (22 characters)
 * ```
 */
export function sessionKeyHasher(secret: string | Uint8Array): (sessionKey: string) => string {
  const key = Buffer.from(hkdfSync('sha256', secret, '', INFO, 32));
  // A session sends request after request, and every one with a pin store hashes its key: an
  // HMAC costs about 2 µs, a lookup here tens of ns. The first keys in are the first out.
  const remembered = new Map<string, string>();
  return (sessionKey) => {
    let hash = remembered.get(sessionKey);
    if (hash !== undefined) return hash;
    hash = createHmac('sha256', key).update(sessionKey).digest('base64url').slice(0, 22);
    if (typeof sessionKey === 'string' && sessionKey.length <= REMEMBERED_KEY_LENGTH) {
      if (remembered.size >= REMEMBERED)
        remembered.delete(remembered.keys().next().value as string);
      remembered.set(sessionKey, hash);
    }
    return hash;
  };
}

function privateBytes(key: unknown): string | undefined {
  if (key instanceof KeyObject) {
    const d = (key.export({ format: 'jwk' }) as { d?: unknown }).d;
    return typeof d === 'string' ? d : undefined;
  }
  const d = (key as { d?: unknown } | null | undefined)?.d;
  return typeof d === 'string' ? d : undefined;
}

/**
 * The secret the engine keys session hashes with: the signing key (the first HS256 secret,
 * else the first exportable private key). Rotating the signing key therefore re-keys pins:
 * a session's pin is lost once, the tokens it holds still count.
 */
export function sessionHashSecret(
  secret: string | Uint8Array | undefined,
  keys: readonly TokenKey[] | undefined,
  required: boolean,
): string | Uint8Array {
  if (secret !== undefined) return secret;
  for (const key of keys ?? []) {
    if ('secret' in key) return key.secret;
    const d = key.privateKey === undefined ? undefined : privateBytes(key.privateKey);
    if (d !== undefined) return d;
  }
  if (required) {
    throw new ConfigError(
      'hashSessionKey',
      'no HS256 secret or exportable private key to key session hashes with: pass `hashSessionKey: sessionKeyHasher(aSecret)`',
    );
  }
  // Nothing to derive from and no pin store: the hashes only label this process's tokens.
  return randomBytes(32);
}
