import { AsyncLocalStorage } from 'node:async_hooks';
import type { FreshDataSource } from './data-source.js';
import type { PoolClientLike } from './pg-types.js';

/** The transaction `fn` runs in: its data source and connection, until it commits or rolls back. */
export interface TransactionScope {
  readonly db: FreshDataSource;
  /** The transaction's connection. */
  readonly client: PoolClientLike;
  open: boolean;
}

/**
 * What an async context runs in: a request's data source, or a transaction of one (whose data
 * source is then the current one too). One storage for both: before Node.js 24 every enabled
 * AsyncLocalStorage adds its own work to every async resource the process creates, so a
 * second one for transactions would cost every request of an app that ever ran one.
 */
type Frame = FreshDataSource | TransactionFrame;

/** A transaction's frame: told apart from a data source by its class. */
class TransactionFrame {
  readonly scope: TransactionScope;
  constructor(scope: TransactionScope) {
    this.scope = scope;
  }
}

const storage = new AsyncLocalStorage<Frame>();

/**
 * The data source of the request being handled, for repository code deep in the call stack.
 * Inside `db.transaction(fn)` it is that data source, whose statements then run on the
 * transaction. Throws outside a request handled by a freshgate adapter.
 *
 * @example
 * ```ts
 * export async function findCase(id: string) {
 *   const { rows } = await currentDb().query('SELECT * FROM cases WHERE id = $1', [id]);
 *   return rows[0];
 * }
 * ```
 */
export function currentDb(): FreshDataSource {
  const db = activeDb();
  if (!db) {
    throw new Error(
      skipped
        ? 'currentDb() was called outside a request handled by freshgate (a gate created with asyncContext: false runs its requests outside the context currentDb() reads: use req.db)'
        : 'currentDb() was called outside a request handled by freshgate',
    );
  }
  return db;
}

// A gate of this process was created with `asyncContext: false`: currentDb()'s error says so.
let skipped = false;

/** Records that a gate runs its requests outside the context. Internal. */
export function contextSkipped(): void {
  skipped = true;
}

/** Runs `fn` with `db` as {@link currentDb}. Internal: adapters use `FreshRequest.run`. */
export function runWithDb<T>(db: FreshDataSource, fn: () => T): T {
  return storage.run(db, fn);
}

/** Runs `fn` inside `scope`: its data source is {@link currentDb}, its transaction {@link activeTransaction}. Internal. */
export function runInTransaction<T>(scope: TransactionScope, fn: () => T): T {
  return storage.run(new TransactionFrame(scope), fn);
}

/** The data source of the current request, or `undefined` outside one. Internal. */
export function activeDb(): FreshDataSource | undefined {
  const frame = storage.getStore();
  return frame instanceof TransactionFrame ? frame.scope.db : frame;
}

/** The transaction the current async context runs in, if any (open or not). Internal. */
export function activeTransaction(): TransactionScope | undefined {
  const frame = storage.getStore();
  return frame instanceof TransactionFrame ? frame.scope : undefined;
}
