import { FreshnessUnavailableError } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

describe('primary budget', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE items (id serial PRIMARY KEY)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, { budget: { rate: 50, burst: 50 } });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('with every replica paused, a burst of 500 reads sends at most rate × t + burst to the primary; the rest fail closed with 503', async () => {
    await Promise.all(cluster.replicas.map((r) => r.pause()));
    try {
      const write = await freshgate.begin({ contract: 'read-your-writes' });
      await write.db.query('INSERT INTO items DEFAULT VALUES');
      const token = write.freshness.token!;

      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 500 }, async () => {
          const { db, freshness } = await freshgate.begin({ contract: 'read-your-writes', token });
          try {
            await db.query('SELECT count(*) FROM items');
            return freshness.headers['X-Freshness-Route'];
          } catch (error) {
            if (error instanceof FreshnessUnavailableError)
              return `503 after ${error.retryAfterSeconds}s`;
            throw error;
          }
        }),
      );
      const seconds = (Date.now() - started) / 1000;
      const onPrimary = outcomes.filter((o) => o === 'primary').length;
      const refused = outcomes.filter((o) => o?.startsWith('503')).length;
      expect(outcomes.some((o) => o?.startsWith('replica:'))).toBe(false);
      expect(onPrimary).toBeGreaterThanOrEqual(50);
      expect(onPrimary).toBeLessThanOrEqual(50 + Math.ceil(50 * seconds) + 1);
      expect(onPrimary + refused).toBe(500);
      expect(outcomes.find((o) => o?.startsWith('503'))).toMatch(/^503 after [1-9]\d*s$/);
    } finally {
      await Promise.all(cluster.replicas.map((r) => r.resume()));
    }
  });
});
