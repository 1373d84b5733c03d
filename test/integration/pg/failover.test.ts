import type { TopologyEvent } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, failover, startCluster, waitFor } from '../../harness/index.js';
import { freshgateFor, TEST_SECRET, untilHealthy } from '../support.js';

const INTERVAL_MS = 50;

describe('rebuilt and promoted replicas', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  const events: (TopologyEvent & { at: number })[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      monitor: { interval: INTERVAL_MS, quarantine: 1_000, health: { enterFor: 0 } },
    });
    await untilHealthy(freshgate);
    freshgate.topology.on((event) => events.push({ ...event, at: Date.now() }));
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('quarantines a rebuilt replica on its first poll back, and trusts it again after the quarantine', async () => {
    events.length = 0;
    const r2 = cluster.replica('r2');
    await r2.rebuild();
    const reachableAt = Date.now();
    await waitFor('r2 quarantined', () =>
      freshgate.topology.replica('r2')!.health === 'quarantined' ? true : undefined,
    );
    const health = events
      .filter((e) => e.type === 'health' && e.node === 'r2')
      .map((e) => (e.type === 'health' ? e.to : ''));
    // down while rebuilt, then quarantined — never healthy in between.
    expect(health.slice(0, 2)).toEqual(['down', 'quarantined']);
    expect(freshgate.monitor.quarantineReason('r2')).toBe('restarted');
    // The breaker re-probes an unreachable node at most every 0.5–5 s; once reachable, the
    // quarantine is applied by the very first poll that succeeds.
    const quarantinedAt = events.find(
      (e) => e.type === 'health' && e.node === 'r2' && e.to === 'quarantined',
    )!.at;
    expect(quarantinedAt - reachableAt).toBeLessThan(6_000);
    await untilHealthy(freshgate, ['r2']);
  });

  it('quarantines a promoted replica within 2 polls', async () => {
    events.length = 0;
    const r1 = cluster.replica('r1');
    const promotedAt = Date.now();
    await r1.promote();
    await waitFor('r1 quarantined', () =>
      freshgate.topology.replica('r1')!.health === 'quarantined' ? true : undefined,
    );
    expect(freshgate.monitor.quarantineReason('r1')).toBe('promoted');
    // Two poll intervals (with jitter) plus a generous allowance for a slow, busy machine.
    expect(Date.now() - promotedAt).toBeLessThan(2 * INTERVAL_MS * 1.1 + 1_000);
    // A quarantined node serves nothing.
    for (let i = 0; i < 20; i++) {
      const { db, freshness } = await freshgate.begin({ contract: 'eventual' });
      await db.query('SELECT 1');
      expect(freshness.headers['X-Freshness-Route']).not.toBe('replica:r1');
    }
  });

  it('does not hang a request that carries a token from before a failover', async () => {
    // r1 was promoted above, so this write lands on the old timeline only: its token names a
    // position the new primary may never reach.
    const before = await freshgate.begin({ contract: 'read-your-writes' });
    await before.db.query("INSERT INTO notes (body) VALUES ('lost in the failover')");
    const oldToken = before.freshness.token!;
    // Make r1 the primary for good and point r2 at it.
    await failover(cluster, 'r1');
    const after = await freshgateFor(cluster, {
      monitor: { interval: INTERVAL_MS, health: { enterFor: 0 } },
      secret: TEST_SECRET,
    });
    try {
      await waitFor('the new cluster id', () =>
        after.topology.primary.clusterId?.endsWith('/2') ? true : undefined,
      );
      const started = Date.now();
      const { db, freshness } = await after.begin({
        contract: 'read-your-writes',
        token: oldToken,
      });
      const { rows } = await db.query('SELECT count(*)::int AS n FROM notes');
      expect(rows[0]).toEqual({ n: 0 });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(freshness.tokenRejection).toBe('foreign-cluster');
    } finally {
      await after.close();
    }
  });
});

/**
 * One replica and an engine whose monitor polls once at start-up and next a minute later: a
 * promotion in a test goes unseen by it.
 */
function withUnwatchedReplica(): { cluster: () => Cluster; freshgate: () => Freshgate } {
  let cluster: Cluster;
  let freshgate: Freshgate;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      monitor: { interval: 60_000, health: { enterFor: 0 } },
    });
    await untilHealthy(freshgate);
  });
  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });
  return { cluster: () => cluster, freshgate: () => freshgate };
}

describe('a replica promoted before the monitor notices', () => {
  const setup = withUnwatchedReplica();

  it('does not use a monotonic read answered by it: no position it gives bounds the read in the cluster the token names', async () => {
    const cluster = setup.cluster();
    const freshgate = setup.freshgate();
    const r1 = cluster.replica('r1');
    await r1.promote();
    // Commits on the promoted node (as through an address that already moved to it) go on
    // after the position where its recovery ended, on a timeline the engine does not know.
    await r1.query("INSERT INTO notes (body) VALUES ('after the promotion')");

    const { db, freshness } = await freshgate.begin({ contract: 'monotonic' });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM notes WHERE body = 'after the promotion'",
    );
    // Taken from the primary the engine knows instead, which has no such row; r1 is out.
    expect(freshness.headers['X-Freshness-Route']).toBe('primary');
    expect(rows).toEqual([{ n: 0 }]);
    expect(freshgate.topology.replica('r1')!.health).not.toBe('healthy');
    const verified = await freshgate.engine.codec.verify(freshness.token!);
    expect(verified.ok && verified.cid).toBe(freshgate.topology.primary.clusterId);
  });
});

describe('a replica promoted under a connection that already served reads', () => {
  const setup = withUnwatchedReplica();

  it('sends no statement after a token-only monotonic read while the node is a standby, and drops its answer once it reported the end of recovery', async () => {
    const cluster = setup.cluster();
    const freshgate = setup.freshgate();
    const r1 = cluster.replica('r1');
    const before = await freshgate.begin({ contract: 'monotonic' });
    await before.db.query('SELECT count(*) FROM notes');
    expect(before.freshness.headers['X-Freshness-Route']).toBe('replica:r1');
    const claim = await freshgate.engine.codec.verify(before.freshness.token!);
    expect(claim.ok && claim.node).toBe('replica:r1');

    await r1.promote();
    await r1.query("INSERT INTO notes (body) VALUES ('after the promotion')");
    // The same pooled connection: the node reports `in_hot_standby = off` with its answer.
    const { db, freshness } = await freshgate.begin({
      contract: 'monotonic',
      token: before.freshness.token!,
    });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM notes WHERE body = 'after the promotion'",
    );
    expect(freshness.headers['X-Freshness-Route']).toBe('primary');
    expect(rows).toEqual([{ n: 0 }]);
    expect(freshgate.topology.replica('r1')!.health).not.toBe('healthy');
  });
});
