import pg from 'pg';

/** A node-postgres pool that counts the statements sent through it. */
export interface CountedPool {
  readonly name: string;
  readonly pool: pg.Pool;
  /** Statements sent since the last {@link CountedPool.reset}. */
  readonly statements: number;
  reset(): void;
}

/**
 * Creates a pool whose clients count every `query` call, whoever makes it (a strategy, or
 * freshgate's data source for reads, writes, commit-LSN reads and position checks). The
 * freshgate monitor polls on connections of its own and is not counted: its cost is a
 * constant ~10 statements per second per node, the same for every strategy.
 */
export function countedPool(name: string, config: pg.PoolConfig): CountedPool {
  const pool = new pg.Pool(config);
  // An idle client's error (server stopped at the end of a run) must not crash the process.
  pool.on('error', () => {});
  let statements = 0;
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      statements++;
      return query(...args);
    };
  });
  return {
    name,
    pool,
    get statements() {
      return statements;
    },
    reset() {
      statements = 0;
    },
  };
}
