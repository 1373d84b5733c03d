import { InvalidLsnError } from './errors.js';

const LSN_PATTERN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** The largest LSN, `FFFFFFFF/FFFFFFFF`. */
export const MAX_LSN = 0xffff_ffff_ffff_ffffn;

/**
 * Parses PostgreSQL's text form of an LSN (`X/Y`, each side 1–8 hex digits) into an
 * unsigned 64-bit `bigint`, so that LSNs compare with `<`/`>` and never as strings.
 *
 * @throws {InvalidLsnError} on anything else (including whitespace and signs), so a bad
 * input can never produce a wrong order.
 * @example
 * ```ts
 * parseLsn('16/B374D848'); // 0x16B374D848n
 * parseLsn('0/0'); // 0n
 * ```
 */
export function parseLsn(text: string): bigint {
  const lsn = tryParseLsn(text);
  if (lsn === undefined) throw new InvalidLsnError(text);
  return lsn;
}

/**
 * Like {@link parseLsn} but returns `undefined` instead of throwing, for client input.
 *
 * @example
 * ```ts
 * tryParseLsn('nope'); // undefined
 * ```
 */
export function tryParseLsn(text: unknown): bigint | undefined {
  if (typeof text !== 'string' || text.length > 17 || !LSN_PATTERN.test(text)) return undefined;
  const slash = text.indexOf('/');
  // Each half fits in 32 bits, so Number parsing is exact and cheaper than BigInt(hex).
  const hi = Number.parseInt(text.slice(0, slash), 16);
  const lo = Number.parseInt(text.slice(slash + 1), 16);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Formats an LSN the way PostgreSQL prints it: uppercase hex, no zero padding.
 *
 * @throws {InvalidLsnError} when the value is not an unsigned 64-bit integer.
 * @example
 * ```ts
 * formatLsn(0x16B374D848n); // '16/B374D848'
 * formatLsn(0n); // '0/0'
 * ```
 */
export function formatLsn(lsn: bigint): string {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn > MAX_LSN) throw new InvalidLsnError(String(lsn));
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffff_ffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/**
 * The larger of two optional LSNs (`null` means "none known").
 *
 * @example
 * ```ts
 * maxLsn(null, 5n); // 5n
 * ```
 */
export function maxLsn(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}
