import { randomUUID } from 'node:crypto';
import { currentDb, type Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

/** Connections of `pool` that are checked out right now. */
const busy = (pool: Freshgate['primary']) => pool.totalCount - pool.idleCount;

describe('db.transaction(fn) on real replicas', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    // A short statement_timeout: a statement that escaped the transaction and waits for its
    // row lock fails in 2 s instead of hanging the test.
    freshgate = await freshgateFor(cluster, { statementTimeout: 2_000, poolSize: 3 });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('runs statements sent through the data source itself (and currentDb()) on the transaction', async () => {
    const id = randomUUID();
    const { db, freshness } = await freshgate.begin({ contract: 'eventual' });
    const seen = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'draft']);
      // Reads of the transaction's own uncommitted row: a replica (or another primary
      // connection) cannot see it.
      const outer = await db.query('SELECT body FROM notes WHERE id = $1', [id]);
      const eventual = await db.replica().query('SELECT body FROM notes WHERE id = $1', [id]);
      const viaCurrent = await currentDb().query('SELECT body FROM notes WHERE id = $1', [id]);
      // A write of the locked row: on a second connection it would wait for this
      // transaction's lock until statement_timeout.
      await db.primary().query('UPDATE notes SET body = $2 WHERE id = $1', [id, 'final']);
      const onePrimaryConnection = busy(freshgate.primary);
      return { outer, eventual, viaCurrent, onePrimaryConnection };
    });
    expect(seen.outer.rows).toEqual([{ body: 'draft' }]);
    expect(seen.eventual.rows).toEqual([{ body: 'draft' }]);
    expect(seen.viaCurrent.rows).toEqual([{ body: 'draft' }]);
    expect(seen.onePrimaryConnection).toBe(1);
    expect(freshness.token).toMatch(/^ey/);
    expect(freshness.headers['X-Freshness-Route']).toBe('primary');
    const rows = await cluster.primary.query('SELECT body FROM notes WHERE id = $1', [id]);
    expect(rows).toEqual([{ body: 'final' }]);
    expect(busy(freshgate.primary)).toBe(0);
  });

  it('rolls back writes sent through the data source when fn throws', async () => {
    const id = randomUUID();
    const { db, freshness } = await freshgate.begin();
    await expect(
      db.transaction(async () => {
        await db.query('INSERT INTO notes VALUES ($1, $2)', [id, 'doomed']);
        throw new Error('handler gave up');
      }),
    ).rejects.toThrow('handler gave up');
    expect(await cluster.primary.query('SELECT 1 FROM notes WHERE id = $1', [id])).toEqual([]);
    expect(freshness.token).toBeNull();
  });

  it('keeps currentDb() on the outer request data source inside fn', async () => {
    const { db } = await freshgate.begin();
    const other = await freshgate.begin();
    await other.run(() =>
      db.transaction(async () => {
        expect(currentDb()).toBe(db);
      }),
    );
  });

  it('keeps statements from outside fn, from another data source inside fn and from callbacks fn left behind off the transaction', async () => {
    const id = randomUUID();
    const { db } = await freshgate.begin({ contract: 'strong' });
    const other = await freshgate.begin({ contract: 'strong' });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let late: Promise<unknown> | undefined;
    const running = db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'uncommitted']);
      // Another request's data source, from inside fn: its own connection, which cannot see
      // the uncommitted row.
      const fromOther = await other.db.query('SELECT body FROM notes WHERE id = $1', [id]);
      // Runs after the commit, when the transaction's connection is back in the pool.
      late = new Promise((resolve) => setTimeout(resolve, 50)).then(() =>
        db.query('SELECT body FROM notes WHERE id = $1', [id]),
      );
      entered();
      await held;
      return fromOther;
    });
    await inside;
    // The same data source, from outside fn while it runs: its own connection too.
    const outside = await db.query('SELECT body FROM notes WHERE id = $1', [id]);
    release();
    const fromOther = await running;
    expect(fromOther.rows).toEqual([]);
    expect(outside.rows).toEqual([]);
    expect(((await late) as { rows: unknown[] }).rows).toEqual([{ body: 'uncommitted' }]);
    expect(busy(freshgate.primary)).toBe(0);
  });

  it('rejects, and issues no token, when PostgreSQL answers COMMIT with ROLLBACK', async () => {
    const id = randomUUID();
    const { db, freshness } = await freshgate.begin();
    const error = await db
      .transaction(async (tx) => {
        await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'lost']);
        // The handler swallows a failed statement: the transaction is aborted.
        await tx.query('INSERT INTO notes (id) VALUES (NULL)').catch(() => {});
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_FRESHGATE_TRANSACTION_ABORTED' });
    expect(freshness.token).toBeNull();
    expect(await cluster.primary.query('SELECT 1 FROM notes WHERE id = $1', [id])).toEqual([]);
    expect(busy(freshgate.primary)).toBe(0);
  });
});

describe('transaction control and session state through db.query()', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    // One primary connection: whatever a request leaves on it, the next request gets.
    freshgate = await freshgateFor(cluster, { poolSize: 1 });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it.each([
    'BEGIN',
    'START TRANSACTION',
    "SET application_name = 'leaked'",
    'SET SESSION statement_timeout = 1',
    'LISTEN somewhere',
    'PREPARE leaked AS SELECT 1',
    'SELECT 1; BEGIN',
  ])('rejects %s outside transaction() and leaves the pooled connection clean', async (sql) => {
    const { db } = await freshgate.begin({ contract: 'strong' });
    const error = await db.query(sql).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_FRESHGATE_UNSAFE_STATEMENT' });
    expect(String((error as Error).message)).toMatch(/db\.transaction\(fn\)/);

    const next = await freshgate.begin({ contract: 'strong' });
    const state = await next.db.query<{ app: string; tx: string; prepared: number }>(
      `SELECT current_setting('application_name') AS app,
        (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
        (SELECT count(*)::int FROM pg_listening_channels()) AS listening,
        now() = statement_timestamp() AS tx`,
    );
    expect(state.rows[0]).toMatchObject({ app: '', prepared: 0, listening: 0, tx: true });
  });

  it('lets SAVEPOINT and SET LOCAL run inside transaction(), and rejects session-wide SET there', async () => {
    const id = randomUUID();
    const { db } = await freshgate.begin();
    await db.transaction(async (tx) => {
      await tx.query("SET LOCAL application_name = 'in-tx'");
      await tx.query('SAVEPOINT before_insert');
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'undone']);
      await tx.query('ROLLBACK TO SAVEPOINT before_insert');
      await db.query('RELEASE SAVEPOINT before_insert');
      const { rows } = await tx.query("SELECT current_setting('application_name') AS app");
      expect(rows).toEqual([{ app: 'in-tx' }]);
      const error = await tx.query("SET application_name = 'leaked'").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_FRESHGATE_UNSAFE_STATEMENT' });
      await expect(tx.query('COMMIT')).rejects.toMatchObject({
        code: 'ERR_FRESHGATE_UNSAFE_STATEMENT',
      });
    });
    expect(await cluster.primary.query('SELECT 1 FROM notes WHERE id = $1', [id])).toEqual([]);
    const next = await freshgate.begin({ contract: 'strong' });
    const { rows } = await next.db.query("SELECT current_setting('application_name') AS app");
    expect(rows).toEqual([{ app: '' }]);
  });
});
