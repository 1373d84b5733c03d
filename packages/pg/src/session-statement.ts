import { memoizeByText, stripNoise } from './statement-kind.js';

/**
 * What a statement does to the connection beyond its own run:
 * - `transaction`: begins or ends a transaction (`BEGIN`, `START TRANSACTION`, `COMMIT`,
 *   `END`, `ROLLBACK`, `ABORT`, two-phase `PREPARE TRANSACTION` / `COMMIT|ROLLBACK PREPARED`);
 * - `savepoint`: `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`;
 * - `transaction-local`: state that ends with the transaction (`SET LOCAL`, `SET TRANSACTION`,
 *   `SET CONSTRAINTS`, cursors without `WITH HOLD`);
 * - `session`: state that outlives the transaction (`SET`, `RESET`, `DISCARD`, `LISTEN`,
 *   `UNLISTEN`, `PREPARE`, `DEALLOCATE`, `LOAD`, `DECLARE … WITH HOLD`).
 */
export type SessionStatementKind = 'transaction' | 'savepoint' | 'transaction-local' | 'session';

/** Where a statement is sent: a pooled connection of its own, or `db.transaction(fn)`'s. */
export type StatementScope = 'request' | 'transaction';

const SIMPLE: Record<string, SessionStatementKind> = {
  BEGIN: 'transaction',
  START: 'transaction',
  COMMIT: 'transaction',
  END: 'transaction',
  ABORT: 'transaction',
  SAVEPOINT: 'savepoint',
  RELEASE: 'savepoint',
  RESET: 'session',
  DISCARD: 'session',
  LISTEN: 'session',
  UNLISTEN: 'session',
  DEALLOCATE: 'session',
  LOAD: 'session',
  FETCH: 'transaction-local',
  MOVE: 'transaction-local',
  CLOSE: 'transaction-local',
};

/** Classifies one statement (already stripped of noise and upper-cased) by its leading words. */
function classify(statement: string): { kind: SessionStatementKind; keyword: string } | null {
  const words = statement.trim().split(/\s+/, 3);
  const [first = '', second = '', third = ''] = words;
  const simple = SIMPLE[first];
  if (simple) return { kind: simple, keyword: first === 'START' ? 'START TRANSACTION' : first };
  switch (first) {
    case 'ROLLBACK': {
      // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name
      const to =
        second === 'TO' || ((second === 'WORK' || second === 'TRANSACTION') && third === 'TO');
      return to
        ? { kind: 'savepoint', keyword: 'ROLLBACK TO' }
        : { kind: 'transaction', keyword: first };
    }
    case 'PREPARE':
      return second === 'TRANSACTION'
        ? { kind: 'transaction', keyword: 'PREPARE TRANSACTION' }
        : { kind: 'session', keyword: first };
    case 'SET':
      if (second === 'LOCAL' || second === 'TRANSACTION' || second === 'CONSTRAINTS')
        return { kind: 'transaction-local', keyword: `SET ${second}` };
      return { kind: 'session', keyword: 'SET' };
    case 'DECLARE':
      // A held cursor survives the commit; any other cursor ends with its transaction.
      return /\bWITH\s+HOLD\b/.test(statement)
        ? { kind: 'session', keyword: 'DECLARE … WITH HOLD' }
        : { kind: 'transaction-local', keyword: first };
    default:
      return null;
  }
}

/**
 * The first statement of `sql` that may not be sent in `scope`, as its leading keywords
 * (`'BEGIN'`, `'SET'`, …), or `undefined` when every statement may. Outside a transaction
 * nothing that controls the transaction or leaves state on the connection may run: the
 * connection goes back to the pool and the next request would inherit it. Inside
 * `db.transaction(fn)`, savepoints and transaction-local state are fine (they end with the
 * transaction), but `BEGIN`/`COMMIT`/`ROLLBACK` would take the transaction away from freshgate
 * (and its commit-LSN capture) and session-wide state would outlive it.
 *
 * Only the SQL text is seen: a function that changes session state (`set_config(…, false)`,
 * `pg_advisory_lock`) is not detected.
 *
 * @example
 * ```ts
 * unsafeStatement('BEGIN', 'request');                      // 'BEGIN'
 * unsafeStatement("SET search_path = app", 'request');     // 'SET'
 * unsafeStatement("SET LOCAL lock_timeout = '1s'", 'transaction'); // undefined
 * unsafeStatement('SAVEPOINT a', 'transaction');            // undefined
 * unsafeStatement('SELECT 1', 'request');                   // undefined
 * ```
 */
export function unsafeStatement(sql: string, scope: StatementScope): string | undefined {
  return scope === 'request' ? unsafeInRequest(sql) : unsafeInTransaction(sql);
}

const unsafeInRequest = memoizeByText((sql) => firstUnsafe(sql, 'request'));
const unsafeInTransaction = memoizeByText((sql) => firstUnsafe(sql, 'transaction'));

function firstUnsafe(sql: string, scope: StatementScope): string | undefined {
  for (const statement of stripNoise(sql).split(';')) {
    const found = classify(statement);
    if (!found) continue;
    if (
      scope === 'transaction' &&
      (found.kind === 'savepoint' || found.kind === 'transaction-local')
    )
      continue;
    return found.keyword;
  }
  return undefined;
}
