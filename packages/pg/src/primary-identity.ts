import { NodeUnavailableError } from '@freshgate/core';
import type { Topology } from '@freshgate/core/adapter';
import { PRIMARY_TIMELINE_SQL } from './monitor.js';
import type { PoolClientLike, PoolLike } from './pg-types.js';

// The identity of the node behind a new primary connection: the same cluster id the monitor
// computes (system identifier + timeline), and whether it is a standby.
export const IDENTITY_SQL = `SELECT pg_is_in_recovery() AS recovery,
  (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE ${PRIMARY_TIMELINE_SQL} END AS tli`;

const ignoreError = () => {};

/** Connections checked out at most per `connect()` while stale ones are drained. */
const MAX_DRAINED = 32;

/**
 * The primary pool as the data source uses it: every new connection is identified once
 * (one round trip, when it is opened, never per statement). When the node behind the
 * primary's address is not the one the monitor knows — a failover moved the address to a
 * promoted replica — `refresh` makes the monitor poll the primary at once (whatever its
 * breaker's back-off), so that the new cluster id and timeline history are known before the
 * first statement runs and the first token is signed. Pooled connections opened to a
 * previous cluster are destroyed when checked out (the pool drains and refills itself), and
 * a standby behind the address (a demoted primary) is a 503, not a write to attempt.
 */
export function identityCheckedPool(
  pool: PoolLike,
  topology: Topology,
  refresh: () => Promise<void>,
): PoolLike {
  const identities = new WeakMap<PoolClientLike, string>();

  async function identify(client: PoolClientLike): Promise<string> {
    let row: { recovery?: boolean; sysid?: string; tli?: number | null } | undefined;
    try {
      row = (await client.query(IDENTITY_SQL)).rows[0] as typeof row;
    } catch (error) {
      client.release(error as Error);
      throw new NodeUnavailableError('primary', { cause: error });
    }
    if (!row || row.recovery) {
      client.release(true);
      // The monitor quarantines it too; until the address moves there is no primary.
      await refresh();
      throw new NodeUnavailableError('primary', {
        cause: new Error('the primary address answers as a standby'),
      });
    }
    const id = `${row.sysid}/${row.tli}`;
    if (id !== topology.primary.clusterId || topology.primary.health !== 'healthy') await refresh();
    identities.set(client, id);
    return id;
  }

  async function connect(): Promise<PoolClientLike> {
    for (let drained = 0; drained < MAX_DRAINED; drained++) {
      const client = await pool.connect();
      // A server that dies while the identity query runs makes the client emit 'error'.
      if (!identities.has(client)) client.on?.('error', ignoreError);
      const id = identities.get(client) ?? (await identify(client));
      if (id === topology.primary.clusterId) return client;
      // A connection to a previous cluster (or to one the monitor could not confirm yet).
      client.release(true);
    }
    throw new NodeUnavailableError('primary', {
      cause: new Error('the primary changed and the monitor has not confirmed the new one'),
    });
  }

  return {
    connect,
    query: (text, values) => pool.query(text, values),
    end: () => pool.end(),
    get totalCount() {
      return pool.totalCount;
    },
    get idleCount() {
      return pool.idleCount;
    },
    get waitingCount() {
      return pool.waitingCount;
    },
    get options() {
      return pool.options;
    },
  };
}
