import {
  PoolExhaustedError,
  StatementTimeoutError,
  toProblem,
  UnsafeStatementError,
} from '@freshgate/core';
import { createEngine, Topology } from '@freshgate/core/adapter';
import { describe, expect, it } from 'vitest';
import { type DataSourceBackend, FreshDataSource } from './data-source.js';
import type { PoolClientLike, PoolLike } from './pg-types.js';

/** A pool whose connect() and query() behave as scripted, counting checked-out clients. */
function fakePool(behaviour: { connect?: () => Error | undefined; query?: () => Error }) {
  const pool = {
    out: 0,
    released: [] as (Error | boolean | undefined)[],
    async connect(): Promise<PoolClientLike> {
      const failure = behaviour.connect?.();
      if (failure) throw failure;
      pool.out++;
      return {
        query: async () => {
          const error = behaviour.query?.();
          if (error) throw error;
          return { rows: [{ lsn: '0/10' }], rowCount: 1 };
        },
        release: (destroy?: Error | boolean) => {
          pool.out--;
          pool.released.push(destroy);
        },
      };
    },
    query: async () => ({ rows: [{ lsn: '0/10' }], rowCount: 1 }),
    end: async () => {},
    totalCount: 0,
    idleCount: 0,
    waitingCount: 0,
  };
  return pool;
}

async function setup(primary: PoolLike, replica: PoolLike) {
  const topology = new Topology({ replicas: [{ name: 'r1' }] });
  topology.updatePrimary({ currentLsn: 0x10n, clusterId: 'c/1', health: 'healthy' });
  topology.updateReplica('r1', { replayLsn: 0x10n, lagMs: 0, clusterId: 'c/1', health: 'healthy' });
  const engine = await createEngine({ topology, secret: 'data-source-test-secret-0123456789ab' });
  const failures: string[] = [];
  const observed: string[] = [];
  const backend: DataSourceBackend = {
    asyncContext: true,
    topology,
    primary,
    replicas: new Map([['r1', replica]]),
    commitLsnFunction: () => 'pg_current_wal_lsn',
    primaryPositionAfter: async () => ({ lsn: 0x10n, source: 'query' }),
    reportFailure: (name) => failures.push(name),
    observePrimary: (latencyMs, outcome) => {
      expect(latencyMs).toBeGreaterThanOrEqual(0);
      observed.push(outcome);
    },
    replayLsn: async () => 0x10n,
    waitForReplay: async () => {},
  };
  const db = async (contract: 'strong' | 'eventual') =>
    new FreshDataSource(backend, await engine.begin({ contract }), {
      strong: engine.contract('strong'),
      eventual: engine.contract('eventual'),
    });
  return { topology, db, failures, observed };
}

const queueTimeout = () => new Error('timeout exceeded when trying to connect');
const cancelled = () =>
  Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });

describe('FreshDataSource under overload', () => {
  it('turns a pool queue timeout on the primary into a 503 with Retry-After', async () => {
    const { db } = await setup(fakePool({ connect: queueTimeout }), fakePool({}));
    const error = await (await db('strong')).query('SELECT 1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolExhaustedError);
    expect((error as PoolExhaustedError).node).toBe('primary');
    expect(toProblem(error)).toMatchObject({ status: 503, headers: { 'Retry-After': '1' } });
    const write = await (await db('strong'))
      .query('INSERT INTO t VALUES (1)')
      .catch((e: unknown) => e);
    expect(write).toBeInstanceOf(PoolExhaustedError);
  });

  it('does not take a replica out of rotation because its pool is busy', async () => {
    const { db, failures, topology } = await setup(
      fakePool({}),
      fakePool({ connect: queueTimeout }),
    );
    const error = await (await db('eventual')).query('SELECT 1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolExhaustedError);
    expect((error as PoolExhaustedError).node).toBe('r1');
    expect(failures).toEqual([]);
    expect(topology.replica('r1')?.health).toBe('healthy');
  });

  it('answers a statement timeout on a replica with a 503, keeps the connection and the replica', async () => {
    const replica = fakePool({ query: cancelled });
    const { db, failures, topology } = await setup(fakePool({}), replica);
    const error = await (await db('eventual')).query('SELECT pg_sleep(10)').catch((e) => e);
    expect(error).toBeInstanceOf(StatementTimeoutError);
    expect((error as StatementTimeoutError).node).toBe('r1');
    expect((error as StatementTimeoutError).cause).toMatchObject({ code: '57014' });
    expect(toProblem(error)?.status).toBe(503);
    // Released to the pool for reuse, not destroyed; the replica stays in rotation.
    expect(replica.out).toBe(0);
    expect(replica.released).toEqual([false]);
    expect(failures).toEqual([]);
    expect(topology.replica('r1')?.health).toBe('healthy');
  });
});

describe('FreshDataSource and dying servers', () => {
  it('listens for errors of checked-out connections, so a server crash cannot crash the process', async () => {
    const { EventEmitter } = await import('node:events');
    const client = Object.assign(new EventEmitter(), {
      query: async () => ({ rows: [], rowCount: 0 }),
      release: () => {},
    });
    const pool = { ...fakePool({}), connect: async () => client as unknown as PoolClientLike };
    const { db } = await setup(pool, fakePool({}));
    await (await db('strong')).query('SELECT 1');
    await (await db('strong')).query('SELECT 1');
    expect(client.listenerCount('error')).toBe(1);
    expect(() => client.emit('error', new Error('terminating connection'))).not.toThrow();
  });
});

describe('FreshDataSource and connection state', () => {
  it('rejects transaction control and session state outside transaction() without taking a connection', async () => {
    const primary = fakePool({});
    let connects = 0;
    const counting = {
      ...primary,
      connect: () => {
        connects++;
        return primary.connect();
      },
    };
    const { db } = await setup(counting, fakePool({}));
    for (const sql of ['BEGIN', 'COMMIT', "SET search_path = 'x'", 'LISTEN jobs']) {
      const error = await (await db('strong')).query(sql).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsafeStatementError);
      expect((error as Error).message).toContain('db.transaction(fn)');
    }
    expect(connects).toBe(0);
  });
});

describe('FreshDataSource.withContract', () => {
  it("takes any contract input — 'strong', 'eventual', { maxLag: '2s' } — validated when called", async () => {
    const { db } = await setup(fakePool({}), fakePool({}));
    const source = await db('eventual');
    await source.withContract('strong').query('SELECT 1');
    expect(source.freshness.servedBy).toBe('primary');
    const other = await db('strong');
    await other.withContract('eventual').query('SELECT 1');
    expect(other.freshness.servedBy).toBe('replica:r1');
    const bounded = await db('strong');
    await bounded.withContract({ maxLag: '2s' }).query('SELECT 1');
    expect(bounded.freshness.servedBy).toBe('replica:r1');
    expect(() => source.withContract('strogn' as never)).toThrow(/Did you mean "strong"/);
  });
});

describe('FreshDataSource feeds the primary budget', () => {
  it('reports every statement it runs on the primary — writes, strong reads, transactions — and none on replicas', async () => {
    const { db, observed } = await setup(fakePool({}), fakePool({}));
    await (await db('eventual')).query('SELECT 1'); // replica
    expect(observed).toEqual([]);
    await (await db('strong')).query('SELECT 1');
    expect(observed).toEqual(['ok']);
    await (await db('eventual')).query('INSERT INTO t VALUES (1)'); // the write, not its LSN read
    expect(observed).toEqual(['ok', 'ok']);
    await (await db('eventual')).transaction(async (tx) => {
      await tx.query('UPDATE t SET x = 1');
      await tx.query('SELECT 1');
    });
    // BEGIN, two statements, COMMIT
    expect(observed).toHaveLength(6);
  });

  it("counts a statement's own SQL error as an answer, a statement timeout, a lost connection and a full pool as failures", async () => {
    const unique = () => Object.assign(new Error('duplicate key'), { code: '23505' });
    const lost = () => new Error('Connection terminated unexpectedly');
    for (const [pool, outcome] of [
      [fakePool({ query: unique }), 'ok'],
      [fakePool({ query: cancelled }), 'timeout'],
      [fakePool({ query: lost }), 'error'],
      [fakePool({ connect: queueTimeout }), 'timeout'],
      [fakePool({ connect: lost }), 'error'],
    ] as const) {
      const { db, observed } = await setup(pool, fakePool({}));
      await (await db('strong')).query('SELECT 1').catch(() => {});
      expect(observed).toEqual([outcome]);
    }
  });
});

describe('FreshDataSource and the pool protocol', () => {
  /** A replica pool in node-postgres' callback form, whose connect() may also return a promise. */
  function callbackPool(options: {
    alsoPromise?: boolean;
    queryError?: Error;
    throwOnConnect?: Error;
  }) {
    const pool = {
      ...fakePool({}),
      released: [] as (Error | boolean | undefined)[],
      connect(callback?: (error: Error | undefined, client?: PoolClientLike) => void) {
        if (options.throwOnConnect) throw options.throwOnConnect;
        const client: PoolClientLike = {
          // As node-postgres: (text or config, [values,] callback).
          query: ((...args: unknown[]) => {
            const done = args.findLast((a) => typeof a === 'function') as (
              error: Error | null,
              result?: unknown,
            ) => void;
            setImmediate(() =>
              options.queryError
                ? done(options.queryError)
                : done(null, { rows: [{ n: 1 }], rowCount: 1 }),
            );
          }) as unknown as PoolClientLike['query'],
          release: (destroy?: Error | boolean) => pool.released.push(destroy),
        };
        setImmediate(() => callback?.(undefined, client));
        return (options.alsoPromise ? Promise.resolve(client) : undefined) as never;
      },
    };
    return pool;
  }

  it("reads a replica through node-postgres' callbacks, once even where connect() also returns a promise", async () => {
    for (const alsoPromise of [false, true]) {
      const replica = callbackPool({ alsoPromise });
      const { db } = await setup(fakePool({}), replica);
      const source = await db('eventual');
      const result = await source.query('SELECT 1 AS n');
      expect(result.rows).toEqual([{ n: 1 }]);
      expect(source.freshness.servedBy).toBe('replica:r1');
      await new Promise((resolve) => setImmediate(resolve));
      expect(replica.released).toEqual([false]);
    }
  });

  it('answers a replica whose connect() throws, or whose statement fails, as a rejection', async () => {
    const lost = new Error('Connection terminated unexpectedly');
    const throwing = callbackPool({ throwOnConnect: new Error('boom') });
    const { db: first } = await setup(fakePool({}), throwing);
    const refused = await (await first('eventual')).query('SELECT 1').catch((e: unknown) => e);
    expect(toProblem(refused)?.status).toBe(503);
    const failing = callbackPool({
      queryError: Object.assign(new Error('no such table'), { code: '42P01' }),
    });
    const { db: second, failures } = await setup(fakePool({}), failing);
    await expect((await second('eventual')).query('SELECT 1')).rejects.toThrow('no such table');
    expect(failing.released).toEqual([false]);
    expect(failures).toEqual([]);
    const dying = callbackPool({ queryError: lost });
    const { db: third, failures: lostOnes } = await setup(fakePool({}), dying);
    const gone = await (await third('eventual')).query('SELECT 1').catch((e: unknown) => e);
    expect(toProblem(gone)?.status).toBe(503);
    // Each try destroys its broken connection and reports the replica (this backend keeps it
    // in rotation, so the read tries again until its attempts are spent).
    expect(dying.released.length).toBeGreaterThan(0);
    expect(dying.released.every((destroyed) => destroyed === lost)).toBe(true);
    expect(lostOnes).toEqual(dying.released.map(() => 'r1'));
  });
});

describe('FreshDataSource and node-postgres call shapes', () => {
  it('sends a text statement as text and values (node-postgres copies a config object), a config object whole', async () => {
    const sent: unknown[][] = [];
    const recording = () => {
      const pool = fakePool({});
      const connect = pool.connect.bind(pool);
      pool.connect = async () => {
        const client = await connect();
        const query = client.query.bind(client);
        client.query = ((...args: unknown[]) => {
          sent.push(args.filter((a) => typeof a !== 'function'));
          return (query as (...a: unknown[]) => ReturnType<typeof query>)(...args);
        }) as PoolClientLike['query'];
        return client;
      };
      return pool;
    };
    const { db } = await setup(recording(), recording());
    for (const contract of ['eventual', 'strong'] as const) {
      sent.length = 0;
      const source = await db(contract);
      await source.query('SELECT $1::int AS n', [1]);
      await source.query({ text: 'SELECT $1::int AS n', values: [2], rowMode: 'array' }, [3]);
      await source.query({ text: 'SELECT 4 AS n', rowMode: 'array' });
      expect(sent, contract).toEqual([
        ['SELECT $1::int AS n', [1]],
        [{ text: 'SELECT $1::int AS n', values: [3], rowMode: 'array' }],
        [{ text: 'SELECT 4 AS n', values: undefined, rowMode: 'array' }],
      ]);
    }
  });
});
