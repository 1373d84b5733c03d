import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

describe('a read cancelled by a recovery conflict', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE t (id int PRIMARY KEY, body text)');
    await cluster.primary.query("INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g");
    await cluster.waitForReplicas();
    // Replay cancels conflicting queries at once instead of waiting for them.
    const r1 = cluster.replica('r1');
    await r1.query("ALTER SYSTEM SET max_standby_streaming_delay = '0'");
    await r1.query('SELECT pg_reload_conf()');
    freshgate = await freshgateFor(cluster);
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('is answered from the primary, under the same contract', async () => {
    const { db, freshness } = await freshgate.begin({ contract: 'monotonic' });
    // A slow read on the replica holds a snapshot; vacuum on the primary removes rows that
    // snapshot can see, and replaying that cleanup cancels the read (SQLSTATE 40001).
    const read = db.query<{ n: number }>('SELECT count(*)::int AS n FROM t, pg_sleep(1.5)');
    await new Promise((r) => setTimeout(r, 300));
    await cluster.primary.query('DELETE FROM t WHERE id <= 500');
    await cluster.primary.query('VACUUM t');
    const { rows } = await read;
    expect(rows).toEqual([{ n: 500 }]);
    expect(freshness.headers['X-Freshness-Route']).toBe('primary');
    // The session's floor covers what the primary read saw.
    expect(freshness.token).toMatch(/^ey/);
    // The replica stays in rotation: it did nothing wrong.
    expect(freshgate.topology.replica('r1')!.health).toBe('healthy');
  });
});
