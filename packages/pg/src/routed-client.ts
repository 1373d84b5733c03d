import { EventEmitter } from 'node:events';
import { parseLsn, UnsafeStatementError } from '@freshgate/core';
import type { PrimaryOutcome } from '@freshgate/core/adapter';
import { isConnectionError, toNodeError } from './connection-errors.js';
import {
  acquire,
  type FreshDataSource,
  primaryOutcome,
  type QueryConfigInput,
} from './data-source.js';
import type { PoolClientLike, PoolLike, QueryResultLike } from './pg-types.js';
import { unsafeStatement } from './session-statement.js';
import { stripNoise } from './statement-kind.js';

/** What a routed client needs from its pool. Internal. */
export interface RoutedBackend {
  primary: PoolLike;
  commitLsnSql: () => string;
  /** Reports one statement run on the primary to the primary budget. */
  observePrimary(latencyMs: number, outcome: PrimaryOutcome): void;
}

type Control = 'begin' | 'commit' | 'rollback';

/** Whether `sql` begins or ends a transaction (savepoints and `ROLLBACK TO` do not). Internal. */
export function transactionControl(sql: string): Control | null {
  const [first = '', second = '', third = ''] = stripNoise(sql)
    .trim()
    .split(/[\s;]+/, 3);
  switch (first) {
    case 'BEGIN':
      return 'begin';
    case 'START':
      return second === 'TRANSACTION' ? 'begin' : null;
    case 'COMMIT':
    case 'END':
      return 'commit';
    case 'ABORT':
      return 'rollback';
    case 'ROLLBACK': {
      const to =
        second === 'TO' || ((second === 'WORK' || second === 'TRANSACTION') && third === 'TO');
      return to || second === 'PREPARED' ? null : 'rollback';
    }
    default:
      return null;
  }
}

/** node-postgres' call shapes, with the callback split off. */
export function splitCallback(args: unknown[]): {
  args: unknown[];
  callback: ((error: Error | null, result?: unknown) => void) | undefined;
} {
  const last = args[args.length - 1];
  return typeof last === 'function'
    ? { args: args.slice(0, -1), callback: last as (error: Error | null, result?: unknown) => void }
    : { args, callback: undefined };
}

/** Settles `promise` into a node-style callback, or returns it. */
export function settle<T>(
  promise: Promise<T>,
  callback: ((error: Error | null, result?: T) => void) | undefined,
): Promise<T> | undefined {
  if (!callback) return promise;
  promise.then(
    (result) => callback(null, result),
    (error: Error) => callback(error),
  );
  return undefined;
}

/** `(text, values)` or `(config, values)` as one config object (values beside it win). */
export function toConfig(input: unknown, values: unknown): QueryConfigInput {
  if (typeof input === 'string') return { text: input, values: values as unknown[] | undefined };
  if (input && typeof input === 'object' && typeof (input as QueryConfigInput).text === 'string') {
    const config = input as QueryConfigInput;
    return values === undefined ? config : { ...config, values: values as unknown[] };
  }
  throw new TypeError(
    'freshgate: a routed query takes SQL text or a { text, values } config (streams and cursors need a transaction)',
  );
}

/**
 * The client `RoutedPool.connect()` returns inside a request. Outside a transaction every
 * statement is routed by the request's data source like `req.db.query()`, on a pooled
 * connection of its own. `BEGIN` pins the client to one primary connection until `COMMIT`
 * or `ROLLBACK`: the transaction's statements (savepoints too) run there as the ORM sent
 * them, and `COMMIT` is sent with the commit-LSN read in one message so that the response
 * carries a token once it resolves.
 */
export class RoutedClient extends EventEmitter {
  readonly #db: FreshDataSource;
  readonly #backend: RoutedBackend;
  #transaction: PoolClientLike | undefined;
  #broken: Error | undefined;
  #released = false;

  /** @internal */
  constructor(db: FreshDataSource, backend: RoutedBackend) {
    super();
    this.#db = db;
    this.#backend = backend;
  }

  /** Whether a transaction holds a primary connection. */
  get inTransaction(): boolean {
    return this.#transaction !== undefined;
  }

  query(...raw: unknown[]): Promise<QueryResultLike> | undefined {
    const { args, callback } = splitCallback(raw);
    return settle(this.#query(args[0], args[1]), callback);
  }

  async #query(input: unknown, values: unknown): Promise<QueryResultLike> {
    if (this.#released) throw new Error('freshgate: this client has been released to the pool');
    const transaction = this.#transaction;
    // Streams and cursors (objects with `submit`) are not routed: inside a transaction they
    // run on its connection like any statement.
    if (transaction && typeof (input as { submit?: unknown })?.submit === 'function')
      return this.#send(transaction, [input, values], false);
    const config = toConfig(input, values);
    const control = transactionControl(config.text);
    if (!transaction) {
      if (control === 'begin') return this.#begin(config, values);
      // COMMIT or ROLLBACK with nothing open: PostgreSQL answers with a warning; so does the primary here.
      if (control) return this.#backend.primary.query(config.text);
      return this.#db.query(config);
    }
    if (control === 'commit') return this.#commit(transaction, config);
    if (control === 'rollback') {
      try {
        return await this.#send(transaction, [input, values]);
      } finally {
        this.#end();
      }
    }
    // Savepoints and transaction-local settings end with the transaction; anything else that
    // controls it or outlives it on the connection would escape the commit-LSN capture.
    const unsafe = control ? undefined : unsafeStatement(config.text, 'transaction');
    if (unsafe) throw new UnsafeStatementError(unsafe, true);
    return this.#send(transaction, [input, values]);
  }

  async #begin(config: QueryConfigInput, values: unknown): Promise<QueryResultLike> {
    // The transaction runs on the primary: say so before its first statement.
    this.#db.freshness.route({ inTransaction: true });
    const client = await acquire(this.#backend.primary, 'primary', this.#backend.observePrimary);
    this.#transaction = client;
    this.#broken = undefined;
    try {
      return await this.#send(client, [config, values]);
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  async #commit(client: PoolClientLike, config: QueryConfigInput): Promise<QueryResultLike> {
    if (config.values?.length) throw new TypeError('freshgate: COMMIT takes no parameters');
    let results: QueryResultLike[];
    try {
      // One simple-query message: the commit, then the position at or past its commit record.
      results = (await this.#send(client, [
        `${config.text.replace(/;\s*$/, '')}; SELECT ${this.#backend.commitLsnSql()}`,
      ])) as unknown as QueryResultLike[];
    } finally {
      this.#end();
    }
    const [commit, position] = results;
    // An aborted transaction answers COMMIT with ROLLBACK: nothing was written, no token.
    const lsn = position?.rows[0]?.lsn as string | undefined;
    if (commit?.command !== 'ROLLBACK' && lsn) await this.#db.freshness.wrote(parseLsn(lsn));
    return commit as QueryResultLike;
  }

  /** One statement on the transaction's connection, timed for the primary budget unless a stream. */
  async #send(client: PoolClientLike, args: unknown[], timed = true): Promise<QueryResultLike> {
    const start = timed ? performance.now() : 0;
    let result: QueryResultLike;
    try {
      result = await (client.query as (...a: unknown[]) => Promise<QueryResultLike>)(...args);
    } catch (error) {
      if (isConnectionError(error)) this.#broken = error as Error;
      if (timed) this.#backend.observePrimary(performance.now() - start, primaryOutcome(error));
      // A connection that failed (not the statement) is the primary being unavailable: 503.
      throw toNodeError(error, 'primary');
    }
    if (timed) this.#backend.observePrimary(performance.now() - start, 'ok');
    return result;
  }

  /** Gives the transaction's connection back (destroyed if it broke). */
  #end(): void {
    const client = this.#transaction;
    this.#transaction = undefined;
    client?.release(this.#broken ?? false);
  }

  /**
   * Returns the client to the pool. A transaction still open is rolled back by closing its
   * connection, which then cannot carry it into another request.
   */
  release(destroy?: Error | boolean): void {
    // Outside a transaction no connection is held: there is nothing to destroy.
    if (this.#released)
      throw new Error('Release called on client which has already been released to the pool.');
    this.#released = true;
    const client = this.#transaction;
    this.#transaction = undefined;
    if (client) client.release(this.#broken ?? (destroy instanceof Error ? destroy : true));
  }
}
