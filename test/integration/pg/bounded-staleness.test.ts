import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

/** Commits a small write every `everyMs` until stopped. */
function writeStream(cluster: Cluster, everyMs = 20): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await cluster.primary.query('INSERT INTO ticks DEFAULT VALUES');
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

describe('bounded staleness and lag measurement', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, replicaNames: ['a', 'b'] });
    await cluster.primary.query(
      'CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      // Lag thresholds high enough that a 500 ms delay keeps both replicas `healthy`: the
      // contract's maxLag, not health, must keep reads off the delayed one.
      monitor: { health: { exitLag: 5_000, enterLag: 4_000, enterFor: 0 } },
    });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('does not make replicas of an idle primary look lagged', async () => {
    await cluster.waitForReplicas();
    await new Promise((r) => setTimeout(r, 1_500));
    for (const replica of freshgate.topology.replicas) {
      expect(replica.lagMs).toBe(0);
    }
  });

  it('measures a 500 ms apply delay within ±150 ms during a steady write stream', async () => {
    await cluster.replica('a').setApplyDelay(500);
    const stream = writeStream(cluster);
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const samples: number[] = [];
      for (let i = 0; i < 20; i++) {
        samples.push(freshgate.topology.replica('a')!.lagMs!);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const lag of samples) {
        expect(lag).toBeGreaterThanOrEqual(350);
        expect(lag).toBeLessThanOrEqual(650);
      }
      expect(freshgate.topology.replica('b')!.lagMs!).toBeLessThan(200);

      // maxLag 200 ms never routes to the delayed replica.
      const routes = new Set<string>();
      for (let i = 0; i < 100; i++) {
        const read = await freshgate.begin({ contract: { maxLag: '200ms' } });
        await read.db.query('SELECT count(*) FROM ticks');
        routes.add(read.freshness.headers['X-Freshness-Route']!);
        expect(read.freshness.headers['X-Freshness-Lag-Ms']).toBeDefined();
      }
      expect(routes).toEqual(new Set(['replica:b']));

      // Both delayed: the contract's fallback applies (primary by default, stale when asked).
      await cluster.replica('b').setApplyDelay(500);
      await new Promise((r) => setTimeout(r, 1_000));
      const fallback = await freshgate.begin({ contract: { maxLag: '200ms' } });
      await fallback.db.query('SELECT count(*) FROM ticks');
      expect(fallback.freshness.headers['X-Freshness-Route']).toBe('primary');

      const stale = await freshgate.begin({ contract: { maxLag: '200ms', fallback: 'stale' } });
      await stale.db.query('SELECT count(*) FROM ticks');
      expect(stale.freshness.headers['X-Freshness-Route']).toMatch(/^replica:[ab]$/);
      expect(Number(stale.freshness.headers['X-Freshness-Lag-Ms'])).toBeGreaterThan(200);
    } finally {
      await stream.stop();
      await cluster.replica('a').setApplyDelay(0);
      await cluster.replica('b').setApplyDelay(0);
    }
  });
});
