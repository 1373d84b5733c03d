import { AsyncLocalStorage } from 'node:async_hooks';
import type { FreshDataSource } from './data-source.js';

const storage = new AsyncLocalStorage<FreshDataSource>();

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
  const db = storage.getStore();
  if (!db) throw new Error('currentDb() was called outside a request handled by freshgate');
  return db;
}

/** Runs `fn` with `db` as {@link currentDb}. Internal: adapters use `FreshRequest.run`. */
export function runWithDb<T>(db: FreshDataSource, fn: () => T): T {
  return storage.run(db, fn);
}

/** The data source of the current request, or `undefined` outside one. Internal. */
export function activeDb(): FreshDataSource | undefined {
  return storage.getStore();
}
