import { HEADER_TOKEN } from './fresh-fetch.js';

/** Anything that carries a server request's freshness: an Express `req`, a Fastify `request`, `currentDb()`. */
export interface FreshnessCarrier {
  freshness?: { forwardToken(): string | null } | null;
}

/**
 * Headers that forward the current server request's freshness token to another service, so
 * that the service's causal reads see what this request saw or wrote: the newest token the
 * request issued, else the valid one it received. Empty when there is none.
 *
 * @example
 * ```ts
 * app.post('/cases', async (req, res) => {
 *   await req.db.query('INSERT INTO cases ...');
 *   await fetch('http://billing/invoices', { method: 'POST', headers: forwardFreshness(req) });
 * });
 * // deeper in the call stack: forwardFreshness(currentDb())
 * ```
 */
export function forwardFreshness(
  source: FreshnessCarrier | string | null | undefined,
): Record<string, string> {
  const token = typeof source === 'string' ? source : (source?.freshness?.forwardToken() ?? null);
  return token ? { [HEADER_TOKEN]: token } : {};
}
