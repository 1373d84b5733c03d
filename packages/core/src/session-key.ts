import { createHash } from 'node:crypto';

/**
 * The default session-key hash: SHA-256, base64url, first 22 characters (128 bits). Raw
 * session identifiers never reach the pin store or a token's `sid`.
 *
 * @example
 * ```ts
 * hashSessionKey('sess:4f2a...'); // 'm2dZr0...' (22 characters)
 * ```
 */
export function hashSessionKey(sessionKey: string): string {
  return createHash('sha256')
    .update('freshgate:session:')
    .update(sessionKey)
    .digest('base64url')
    .slice(0, 22);
}
