import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, failover, startCluster } from './index.js';

describe('failover', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE t (id int)');
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('promotes a replica to a new timeline and repoints the other replica at it', async () => {
    const before = await cluster
      .replica('r1')
      .query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    const promoted = await failover(cluster, 'r1');
    expect(cluster.primary).toBe(promoted);
    // The timeline is the first 8 hex digits of the current WAL file's name.
    const [state] = await promoted.query<{ recovering: boolean; tli: string; id: string }>(
      'SELECT pg_is_in_recovery() AS recovering, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli, system_identifier::text AS id FROM pg_control_system()',
    );
    expect(state!.recovering).toBe(false);
    expect(state!.tli).toBe('00000002');
    expect(state!.id).toBe(before[0]!.id);
    const lsn = await cluster.write('INSERT INTO t VALUES (1)');
    await cluster.replica('r2').waitForReplay(lsn);
    const rows = await cluster.replica('r2').query('SELECT * FROM t');
    expect(rows).toHaveLength(1);
  });
});
