import { randomUUID } from 'node:crypto';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

describe('read-your-writes on real replicas', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster);
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('routes a read with the session commit LSN to the primary while replicas are paused, then to a caught-up replica', async () => {
    await Promise.all(cluster.replicas.map((r) => r.pause()));
    const id = randomUUID();

    const write = await freshgate.begin({ contract: 'read-your-writes' });
    await write.db.query('INSERT INTO notes VALUES ($1, $2)', [id, 'hello']);
    const token = write.freshness.token;
    expect(token).toMatch(/^ey/);
    expect(write.freshness.headers['X-Freshness-Route']).toBe('primary');

    const read = await freshgate.begin({ contract: 'read-your-writes', token: token! });
    const { rows } = await read.db.query('SELECT body FROM notes WHERE id = $1', [id]);
    expect(rows).toEqual([{ body: 'hello' }]);
    expect(read.freshness.headers['X-Freshness-Route']).toBe('primary');

    await Promise.all(cluster.replicas.map((r) => r.resume()));
    await cluster.waitForReplicas();
    const later = await freshgate.begin({ contract: 'read-your-writes', token: token! });
    const again = await later.db.query('SELECT body FROM notes WHERE id = $1', [id]);
    expect(again.rows).toEqual([{ body: 'hello' }]);
    expect(later.freshness.headers['X-Freshness-Route']).toMatch(/^replica:r[12]$/);
  });

  it('can route to replicas as soon as start() resolves', async () => {
    const fresh = await freshgateFor(cluster);
    try {
      const read = await fresh.begin({ contract: 'eventual' });
      await read.db.query('SELECT 1');
      expect(read.freshness.headers['X-Freshness-Route']).toMatch(/^replica:/);
    } finally {
      await fresh.close();
    }
  });

  it('sends a read with no known LSN to a replica', async () => {
    const read = await freshgate.begin({ contract: 'read-your-writes' });
    await read.db.query('SELECT count(*) FROM notes');
    expect(read.freshness.headers['X-Freshness-Route']).toMatch(/^replica:/);
  });
});
