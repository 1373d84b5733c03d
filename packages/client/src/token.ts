/** What the client reads from a token's payload (it cannot verify signatures, and need not). */
export interface TokenInfo {
  /** Commit LSN as a 64-bit integer. */
  lsn: bigint;
  /** Cluster id. */
  cid: string;
  /** Issued at / expires, seconds since the epoch. */
  iat: number;
  exp: number;
}

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

function base64UrlDecode(text: string): string {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/**
 * The payload of a freshness token (compact JWS), or `null` when it is not one. LSNs are
 * compared as 64-bit integers, never as strings (`9/0` < `10/0`).
 *
 * @example
 * ```ts
 * readToken(token)?.lsn; // 0x16B374D848n for lsn "16/B374D848"
 * ```
 */
export function readToken(token: string): TokenInfo | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined || parts[1].length > 2048) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1])) as Record<string, unknown>;
    const match = typeof claims.lsn === 'string' ? LSN.exec(claims.lsn) : null;
    if (match === null || typeof claims.cid !== 'string') return null;
    const lsn = (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
    const iat = typeof claims.iat === 'number' ? claims.iat : 0;
    const exp = typeof claims.exp === 'number' ? claims.exp : Number.POSITIVE_INFINITY;
    return { lsn, cid: claims.cid, iat, exp };
  } catch {
    return null;
  }
}

/**
 * Whether `candidate` should replace `current`: the higher LSN of the same cluster wins (an
 * equal LSN with a later expiry too); a token of another cluster (after a failover or
 * restore) wins when it was issued later; an expired current token always loses.
 */
export function isNewer(candidate: TokenInfo, current: TokenInfo | null, nowMs: number): boolean {
  if (current === null || current.exp * 1000 <= nowMs) return true;
  if (candidate.cid !== current.cid) return candidate.iat > current.iat;
  if (candidate.lsn !== current.lsn) return candidate.lsn > current.lsn;
  return candidate.exp > current.exp;
}
