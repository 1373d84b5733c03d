import { createHmac, hkdfSync, KeyObject, randomBytes } from 'node:crypto';
import { ConfigError } from './errors.js';
import type { TokenKey } from './token-codec.js';

const INFO = 'freshgate sid';

/**
 * A session-key hash keyed with `secret` (HMAC-SHA-256 under a key derived from it by HKDF,
 * base64url, first 22 characters: 128 bits). Raw session identifiers never reach the pin store
 * or a token's `sid`, and without the secret a `sid` cannot be matched against guessed keys
 * (user ids, e-mail addresses). The engine builds one from its token key; use this to compute
 * the same values elsewhere, or to pass your own `hashSessionKey`.
 *
 * @example
 * ```ts
 * const hash = sessionKeyHasher(process.env.FRESHGATE_SECRET!);
 * hash('sess:4f2a...'); // 'm2dZr0...' (22 characters)
 * ```
 */
export function sessionKeyHasher(secret: string | Uint8Array): (sessionKey: string) => string {
  const key = Buffer.from(hkdfSync('sha256', secret, '', INFO, 32));
  return (sessionKey) =>
    createHmac('sha256', key).update(sessionKey).digest('base64url').slice(0, 22);
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
