import pg from 'pg';

/** A node-postgres pool that counts the statements sent through it. */
export interface CountedPool {
  readonly name: string;
  readonly pool: pg.Pool;
  /** Statements sent since the last {@link CountedPool.reset}, through every pool of the node. */
  readonly statements: number;
  reset(): void;
  /**
   * Another pool to the same node, with the same settings but `max` connections, whose
   * statements count here too: the pool of another app process. The caller ends it.
   */
  another(max: number): pg.Pool;
}

/**
 * Creates a pool whose clients count every `query` call, whoever makes it (a strategy, or
 * freshgate's data source for reads, writes, commit-LSN reads and position checks). The
 * freshgate monitor polls on connections of its own and is not counted: its cost is a
 * constant ~10 statements per second per node, the same for every strategy.
 */
export function countedPool(name: string, config: pg.PoolConfig): CountedPool {
  let statements = 0;
  const counting = (pool: pg.Pool) => {
    // An idle client's error (server stopped at the end of a run) must not crash the process.
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
        statements++;
        return query(...args);
      };
    });
    return pool;
  };
  return {
    name,
    pool: counting(new pg.Pool(config)),
    get statements() {
      return statements;
    },
    reset() {
      statements = 0;
    },
    another: (max) => counting(new pg.Pool({ ...config, max })),
  };
}
