import { HotStandbyClient } from '@freshgate/pg';
import pg from 'pg';

/**
 * What freshgate's data source sends after a statement to learn a position: the commit LSN
 * of a write or the position after a monotonic read on the primary
 * (`SELECT pg_current_wal_lsn()::text AS lsn`, or the insert/flush LSN), the position after a
 * replica read (`… pg_last_wal_replay_lsn()::text AS lsn` with `pg_is_in_recovery()`). Waits
 * and position checks (`SELECT pg_last_wal_replay_lsn()::text AS lsn` alone) are not these.
 */
const POSITION_READ =
  /^SELECT (pg_current_wal_\w+\(\)::text AS lsn$|pg_is_in_recovery\(\) AS recovery, pg_last_wal_replay_lsn\(\))/;

/** A node-postgres pool that counts the statements sent through it. */
export interface CountedPool {
  readonly name: string;
  readonly pool: pg.Pool;
  /** Statements sent since the last {@link CountedPool.reset}, through every pool of the node. */
  readonly statements: number;
  /**
   * Of those, statements that read a WAL position (`pg_current_wal_lsn()` and the like on the
   * primary, `pg_last_wal_replay_lsn()` with `pg_is_in_recovery()` on a replica): a write's
   * commit LSN, or the position a monotonic read was followed by.
   */
  readonly positionReads: number;
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
 * constant ~10 statements per second per node, the same for every strategy. Its clients are
 * `HotStandbyClient`s, as those of the pools freshgate makes from a URL.
 */
export function countedPool(name: string, config: pg.PoolConfig): CountedPool {
  let statements = 0;
  let positionReads = 0;
  const counting = (pool: pg.Pool) => {
    // An idle client's error (server stopped at the end of a run) must not crash the process.
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
        statements++;
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: unknown })?.text;
        if (typeof text === 'string' && POSITION_READ.test(text)) positionReads++;
        return query(...args);
      };
    });
    return pool;
  };
  return {
    name,
    pool: counting(new pg.Pool({ Client: HotStandbyClient, ...config })),
    get statements() {
      return statements;
    },
    get positionReads() {
      return positionReads;
    },
    reset() {
      statements = 0;
      positionReads = 0;
    },
    another: (max) => counting(new pg.Pool({ Client: HotStandbyClient, ...config, max })),
  };
}
