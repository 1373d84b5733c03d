import { FreshgateError, NodeUnavailableError } from '@freshgate/core';

// Errors that mean the node could not be reached or cannot serve statements right now: the
// statement did not run (or, for a write whose connection broke mid-statement, may or may
// not have committed). Anything else is the statement's own error and is rethrown as is.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

// SQLSTATEs: 57P01 admin_shutdown (fast/immediate shutdown terminated the backend), 57P02
// crash_shutdown, 57P03 cannot_connect_now (starting up, shutting down, in recovery), 57P04
// database_dropped, and class 08 (connection exceptions).
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '57P04']);

/**
 * SQLSTATE 25006 read_only_sql_transaction: a write reached a standby. On the primary's
 * address that is a demoted primary (the address has not moved yet after a failover).
 */
export const READ_ONLY_TRANSACTION = '25006';

/** Whether `error` means the node is unreachable or unable to serve, not that the statement failed. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof NodeUnavailableError) return true;
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08')) return true;
  }
  const message = (error as Error)?.message ?? '';
  // node-postgres' own wording: a connection that dropped before or while the statement was
  // sent ("Connection terminated unexpectedly"), could not be opened in time, or a checked-out
  // client whose connection already failed ("… is not queryable"); the server's wording when
  // it is shutting down or starting.
  return /Connection terminated|connection timeout|is not queryable|the database system is (shutting down|starting up|in recovery)|terminating connection due to administrator command/i.test(
    message,
  );
}

/** Whether `error` is a write refused by a standby (a demoted primary). */
export function isReadOnlyError(error: unknown): boolean {
  return (error as { code?: unknown })?.code === READ_ONLY_TRANSACTION;
}

/**
 * Whether `error`, raised by a statement on `node`, is the node's failure rather than the
 * statement's: a connection failure, or on the primary a read-only refusal (a demoted
 * primary). Freshgate's own errors are not (they were classified where they arose).
 */
export function isNodeFailure(error: unknown, node: string): boolean {
  if (error instanceof FreshgateError) return false;
  return isConnectionError(error) || (node === 'primary' && isReadOnlyError(error));
}

/**
 * The error a caller of the data source should see for `error` raised on `node`: a
 * connection failure (or, on the primary, a read-only refusal) becomes a
 * {@link NodeUnavailableError} (503 with `Retry-After`); freshgate errors and the statement's
 * own errors pass through.
 */
export function toNodeError(error: unknown, node: string): unknown {
  return isNodeFailure(error, node) ? new NodeUnavailableError(node, { cause: error }) : error;
}
