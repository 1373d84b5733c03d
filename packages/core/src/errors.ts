/**
 * Every `code` a {@link FreshgateError} can carry. `switch (err.code)` narrows to the
 * subclass-specific data.
 */
export type FreshgateErrorCode =
  | 'ERR_FRESHGATE_INVALID_LSN'
  | 'ERR_FRESHGATE_CONFIG'
  | 'ERR_FRESHGATE_NOT_STARTED'
  | 'ERR_FRESHGATE_TOKEN_REJECTED'
  | 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE'
  | 'ERR_FRESHGATE_STORE'
  | 'ERR_FRESHGATE_POOL_EXHAUSTED'
  | 'ERR_FRESHGATE_STATEMENT_TIMEOUT'
  | 'ERR_FRESHGATE_UNSAFE_STATEMENT'
  | 'ERR_FRESHGATE_TRANSACTION_ABORTED'
  | 'ERR_FRESHGATE_NODE_UNAVAILABLE';

/**
 * Base class of every error freshgate throws. `code` is a literal union so that a
 * `switch` narrows it; `statusCode` is set on errors that reach HTTP.
 *
 * @example
 * ```ts
 * try {
 *   parseLsn(text);
 * } catch (err) {
 *   if (err instanceof FreshgateError && err.code === 'ERR_FRESHGATE_INVALID_LSN') {
 *     // handle
 *   }
 * }
 * ```
 */
export class FreshgateError extends Error {
  /** Stable machine-readable code. */
  readonly code: FreshgateErrorCode;
  /** HTTP status this error maps to, when it can reach a client. */
  readonly statusCode: number | undefined;

  constructor(
    code: FreshgateErrorCode,
    message: string,
    options?: { cause?: unknown; statusCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = options?.statusCode;
  }
}

/**
 * A text that is not a PostgreSQL LSN (`X/Y`, 1–8 hex digits each side).
 *
 * @example
 * ```ts
 * try { parseLsn('16-B374'); } catch (err) { (err as InvalidLsnError).input; // '16-B374' }
 * ```
 */
export class InvalidLsnError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_INVALID_LSN';
  /** The rejected input, truncated to 64 characters. */
  readonly input: string;

  constructor(input: unknown) {
    const shown = typeof input === 'string' ? input.slice(0, 64) : String(typeof input);
    super(
      'ERR_FRESHGATE_INVALID_LSN',
      `Invalid LSN ${JSON.stringify(shown)}: expected X/Y with 1-8 hex digits each side, e.g. "16/B374D848"`,
    );
    this.input = shown;
  }
}

/**
 * Bad configuration, raised when a factory or `defineContract` runs (start-up), never per
 * request. The message names the option and how to fix it.
 *
 * @example
 * ```ts
 * try { defineContract('monotonc'); } catch (err) {
 *   (err as ConfigError).option; // 'contract'
 *   (err as ConfigError).message; // '... did you mean "monotonic"?'
 * }
 * ```
 */
export class ConfigError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_CONFIG';
  /** Path of the offending option, e.g. `budget.rate` or `routes[GET /a].fallback`. */
  readonly option: string;

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super('ERR_FRESHGATE_CONFIG', `Invalid option \`${option}\`: ${message}`, options);
    this.option = option;
  }
}

/**
 * A request arrived before `await gate.start()` resolved: no replica position is known and no
 * token could be issued, so freshgate refuses to serve rather than answer wrongly later.
 *
 * @example
 * ```ts
 * const gate = await createFreshgate({ primary, replicas, secret });
 * await gate.start(); // forgetting this makes every request fail with NotStartedError
 * ```
 */
export class NotStartedError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_NOT_STARTED';

  constructor(starting: boolean) {
    super(
      'ERR_FRESHGATE_NOT_STARTED',
      starting
        ? 'freshgate is still starting: serve requests once `await gate.start()` has resolved'
        : 'freshgate is not started: call `await gate.start()` on the Freshgate from createFreshgate() before serving requests',
    );
  }
}

/** Why a freshness token was not trusted. */
export type TokenRejectionReason =
  | 'malformed'
  | 'oversize'
  | 'signature'
  | 'expired'
  | 'algorithm'
  | 'typ'
  | 'foreign-cluster'
  | 'unknown-kid'
  | 'claims';

/**
 * A freshness token was rejected while the engine runs in `strict` mode (otherwise
 * rejected tokens are ignored and counted). Maps to HTTP 400.
 *
 * @example
 * ```ts
 * if (err instanceof TokenRejectedError) console.log(err.reason); // 'expired'
 * ```
 */
export class TokenRejectedError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_TOKEN_REJECTED';
  declare readonly statusCode: 400;
  /** Why the token was rejected. */
  readonly reason: TokenRejectionReason;

  constructor(reason: TokenRejectionReason) {
    super('ERR_FRESHGATE_TOKEN_REJECTED', `Freshness token rejected: ${reason}`, {
      statusCode: 400,
    });
    this.reason = reason;
  }
}

/**
 * No node can serve a read under its contract and the fallback chain ended in `error`
 * (or the primary budget was empty). Maps to HTTP 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * const d = freshness.route();
 * if (d.kind === 'error') throw new FreshnessUnavailableError(d.reason, d.retryAfterSeconds);
 * ```
 */
export class FreshnessUnavailableError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE';
  declare readonly statusCode: 503;
  /** Seconds the client should wait before retrying (the `Retry-After` value). */
  readonly retryAfterSeconds: number;
  /** The decision reason that led here, e.g. `no-replica-caught-up`. */
  readonly reason: string;

  constructor(reason: string, retryAfterSeconds: number) {
    super(
      'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE',
      `No node can serve this read under its freshness contract (${reason})`,
      { statusCode: 503 },
    );
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A pin store operation failed or timed out. The engine never lets it escape a request; it
 * is handed to telemetry and applies `onStoreError`.
 *
 * @example
 * ```ts
 * throw new StoreError('get', { cause: redisError });
 * ```
 */
export class StoreError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_STORE';
  /** Which store operation failed. */
  readonly operation: 'get' | 'extend';

  constructor(operation: 'get' | 'extend', options?: { cause?: unknown; message?: string }) {
    super('ERR_FRESHGATE_STORE', options?.message ?? `Pin store ${operation} failed`, options);
    this.operation = operation;
  }
}

/**
 * A statement waited longer than its pool's `connectionTimeoutMillis` for a connection
 * (more concurrent requests than connections). The request fails fast instead of queueing
 * without bound. Maps to HTTP 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * if (err instanceof PoolExhaustedError) console.log(err.node, err.retryAfterSeconds); // 'primary', 1
 * ```
 */
export class PoolExhaustedError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_POOL_EXHAUSTED';
  declare readonly statusCode: 503;
  /** `primary` or the replica's name. */
  readonly node: string;
  /** Seconds the client should wait before retrying (the `Retry-After` value). */
  readonly retryAfterSeconds: number;

  constructor(node: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(
      'ERR_FRESHGATE_POOL_EXHAUSTED',
      `No connection to ${node} became free in time: the pool is exhausted`,
      { cause: options?.cause, statusCode: 503 },
    );
    this.node = node;
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 1;
  }
}

/**
 * A read was cancelled by the node's `statement_timeout` (SQLSTATE 57014). It is not retried
 * on another node: a statement that used up its time on a replica would most likely do the
 * same on the primary, the node every write depends on. Maps to HTTP 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * if (err instanceof StatementTimeoutError) console.log(err.node); // 'r1'
 * ```
 */
export class StatementTimeoutError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_STATEMENT_TIMEOUT';
  declare readonly statusCode: 503;
  /** `primary` or the replica's name. */
  readonly node: string;
  /** Seconds the client should wait before retrying (the `Retry-After` value). */
  readonly retryAfterSeconds: number;

  constructor(node: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(
      'ERR_FRESHGATE_STATEMENT_TIMEOUT',
      `The read was cancelled by statement_timeout on ${node}`,
      { cause: options?.cause, statusCode: 503 },
    );
    this.node = node;
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 1;
  }
}

/**
 * A statement that controls the transaction or changes session state (`BEGIN`, `COMMIT`,
 * `SET`, `LISTEN`, `PREPARE`, …) was sent where it would outlive the statement: outside
 * `db.transaction(fn)` it runs on a pooled connection that the next request borrows, and
 * inside it a session-wide change survives the commit. A programmer error, thrown before
 * anything is sent; it carries no HTTP status (it is the application's bug, not the client's).
 *
 * @example
 * ```ts
 * await db.query('BEGIN'); // throws UnsafeStatementError: use db.transaction(fn)
 * await db.transaction(async (tx) => {
 *   await tx.query("SET LOCAL statement_timeout = '5s'"); // fine: ends with the transaction
 * });
 * ```
 */
export class UnsafeStatementError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_UNSAFE_STATEMENT';
  /** The rejected statement's leading keywords, e.g. `SET` or `BEGIN`. */
  readonly statement: string;
  /** Whether it was sent inside `db.transaction(fn)`. */
  readonly inTransaction: boolean;

  constructor(statement: string, inTransaction: boolean) {
    const fix = inTransaction
      ? statement.startsWith('SET') || statement.startsWith('RESET')
        ? 'use SET LOCAL, which ends with the transaction'
        : 'db.transaction(fn) begins and commits the transaction itself (use SAVEPOINT for a nested scope), and session state would outlive it'
      : 'run it inside db.transaction(fn) (SET LOCAL for settings, SAVEPOINT for nested scopes), which holds one connection and ends what it started';
    super(
      'ERR_FRESHGATE_UNSAFE_STATEMENT',
      `${statement} cannot be sent through db.query() ${inTransaction ? 'inside db.transaction(fn)' : 'outside db.transaction(fn)'}: ${fix}`,
    );
    this.statement = statement;
    this.inTransaction = inTransaction;
  }
}

/**
 * PostgreSQL answered `COMMIT` with `ROLLBACK`: a statement inside `db.transaction(fn)`
 * failed and `fn` caught its error, so the transaction was aborted and nothing it wrote was
 * committed. No freshness token is issued.
 *
 * @example
 * ```ts
 * await db.transaction(async (tx) => {
 *   await tx.query('INSERT INTO t VALUES (NULL)').catch(() => {}); // swallowed
 * }); // rejects with TransactionAbortedError
 * ```
 */
export class TransactionAbortedError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_TRANSACTION_ABORTED';

  constructor() {
    super(
      'ERR_FRESHGATE_TRANSACTION_ABORTED',
      'The transaction did not commit: a statement inside db.transaction(fn) failed and its error was caught, so PostgreSQL rolled it back at COMMIT. Let the error propagate, or use SAVEPOINT / ROLLBACK TO SAVEPOINT to recover inside the transaction.',
    );
  }
}

/**
 * A database node could not be reached or could not serve the statement: the connection was
 * refused, reset or terminated, the server is shutting down or starting (`57P01`–`57P03`),
 * or the "primary" turned out to be read-only (`25006`, a demoted primary after a failover).
 * Reads have already been retried on another node that satisfies their contract when one
 * existed; a write may or may not have committed when its connection broke mid-statement.
 * Maps to HTTP 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * if (err instanceof NodeUnavailableError) console.log(err.node, err.retryAfterSeconds); // 'primary', 1
 * ```
 */
export class NodeUnavailableError extends FreshgateError {
  declare readonly code: 'ERR_FRESHGATE_NODE_UNAVAILABLE';
  declare readonly statusCode: 503;
  /** `primary` or the replica's name. */
  readonly node: string;
  /** Seconds the client should wait before retrying (the `Retry-After` value). */
  readonly retryAfterSeconds: number;

  constructor(node: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super('ERR_FRESHGATE_NODE_UNAVAILABLE', `The database node ${node} is unavailable`, {
      cause: options?.cause,
      statusCode: 503,
    });
    this.node = node;
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 1;
  }
}
