import { type Cluster, repointReplicas } from './cluster.js';
import type { TcpProxy } from './tcp-proxy.js';

/** When each step of a switchover or failover finished (`performance.now()` clock). */
export interface FailoverTimes {
  /** The old primary stopped (or was killed). */
  stoppedAt: number;
  /** The promoted node accepts writes and the address points at it. */
  promotedAt: number;
  /** The old primary's last position (planned: every byte of it is on the promoted node). */
  lastLsn: string | null;
}

/**
 * A planned switchover behind a movable address: the address stops accepting (writes fail
 * fast instead of reaching a node about to stop), the primary stops cleanly (a fast shutdown
 * sends all of its WAL to the standbys first), `name` replays everything the primary wrote
 * and is promoted, the address moves to it, and the other replicas follow it. Nothing
 * acknowledged is lost. `cluster.primary` is then the promoted node.
 *
 * @example
 * ```ts
 * const times = await switchover(cluster, 'r1', proxy);
 * ```
 */
export async function switchover(
  cluster: Cluster,
  name: string,
  proxy: TcpProxy,
): Promise<FailoverTimes> {
  const promoted = cluster.replica(name);
  const old = cluster.primary;
  proxy.moveTo(null);
  const [row] = await old.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  await old.stop();
  const stoppedAt = performance.now();
  // The shutdown checkpoint comes after this position: waiting for it proves that every
  // commit the old primary acknowledged reached the promoted node.
  await promoted.waitForReplay(row!.lsn);
  await promoted.promote();
  proxy.moveTo({ host: promoted.host, port: promoted.port });
  const promotedAt = performance.now();
  await repointReplicas(cluster, promoted);
  cluster.primary = promoted;
  return { stoppedAt, promotedAt, lastLsn: row!.lsn };
}

/**
 * An unplanned failover: the primary is killed (SIGKILL, no shutdown checkpoint, WAL not yet
 * streamed is lost), `name` is promoted with whatever it received, the address moves to it
 * and the other replicas follow it. Acknowledged writes past the promoted node's position
 * are lost: that is data loss, not a routing error. `cluster.primary` is then the promoted node.
 */
export async function unplannedFailover(
  cluster: Cluster,
  name: string,
  proxy: TcpProxy,
): Promise<FailoverTimes> {
  const promoted = cluster.replica(name);
  await cluster.primary.kill();
  proxy.moveTo(null);
  const stoppedAt = performance.now();
  await promoted.promote();
  proxy.moveTo({ host: promoted.host, port: promoted.port });
  const promotedAt = performance.now();
  await repointReplicas(cluster, promoted);
  cluster.primary = promoted;
  return { stoppedAt, promotedAt, lastLsn: null };
}
