import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Cluster, startCluster } from './index.js';

async function visible(url: string, id: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM harness_rows WHERE id = $1', [id]);
    return rowCount === 1;
  } finally {
    await client.end();
  }
}

async function lsnBelow(url: string, a: string, b: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT $1::pg_lsn < $2::pg_lsn AS below', [a, b]);
    return rows[0].below;
  } finally {
    await client.end();
  }
}

describe('harness cluster (private, faults injected)', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    const started = Date.now();
    cluster = await startCluster({ replicas: 2, redis: true });
    // Budget from the issue: primary + 2 replicas + Redis ready in under 10 s on 2 cores.
    expect(Date.now() - started).toBeLessThan(10_000);
    await cluster.primary.query('CREATE TABLE harness_rows (id text PRIMARY KEY)');
    await cluster.waitForReplicas();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('hides a committed row from a paused replica, which is behind the commit LSN, until resumed', async () => {
    const r1 = cluster.replica('r1');
    await r1.pause();
    expect(await r1.pauseState()).toBe('paused');
    const id = randomUUID();
    const commitLsn = await cluster.write('INSERT INTO harness_rows VALUES ($1)', [id]);
    expect(await visible(r1.url, id)).toBe(false);
    expect(await lsnBelow(r1.url, await r1.replayLsn(), commitLsn)).toBe(true);
    // The other replica is not paused and catches up.
    await cluster.replica('r2').waitForReplay(commitLsn);
    expect(await visible(cluster.replica('r2').url, id)).toBe(true);

    await r1.resume();
    const resumedAt = Date.now();
    while (!(await visible(r1.url, id))) {
      expect(Date.now() - resumedAt).toBeLessThan(2_000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await lsnBelow(r1.url, await r1.replayLsn(), commitLsn)).toBe(false);
  });

  it('delays replay by recovery_min_apply_delay', async () => {
    const r2 = cluster.replica('r2');
    await r2.setApplyDelay(500);
    try {
      const id = randomUUID();
      // Taken before the write is sent: the commit (and so its replay 500 ms later) comes
      // after it, however long the acknowledgement takes to arrive on a busy machine.
      const sentAt = Date.now();
      await cluster.write('INSERT INTO harness_rows VALUES ($1)', [id]);
      while (!(await visible(r2.url, id))) {
        expect(Date.now() - sentAt).toBeLessThan(10_000);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(450);
    } finally {
      await r2.setApplyDelay(0);
    }
  });

  it('kills a replica, which refuses connections, and restarts it', async () => {
    const r1 = cluster.replica('r1');
    await r1.kill();
    expect(r1.running).toBe(false);
    await expect(r1.query('SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    await r1.start();
    const id = randomUUID();
    const lsn = await cluster.write('INSERT INTO harness_rows VALUES ($1)', [id]);
    await r1.waitForReplay(lsn);
    expect(await visible(r1.url, id)).toBe(true);
  });

  it('rebuilds a replica from a new base backup', async () => {
    const r2 = cluster.replica('r2');
    const id = randomUUID();
    const lsn = await cluster.write('INSERT INTO harness_rows VALUES ($1)', [id]);
    await r2.rebuild();
    await r2.waitForReplay(lsn);
    expect(await visible(r2.url, id)).toBe(true);
    const [row] = await r2.query<{ recovering: boolean }>(
      'SELECT pg_is_in_recovery() AS recovering',
    );
    expect(row!.recovering).toBe(true);
  });

  it('stops and restarts Redis', async () => {
    const redis = cluster.redis!;
    await redis.stop();
    expect(redis.running).toBe(false);
    await redis.start();
    expect(redis.running).toBe(true);
  });
});

describe('shared cluster', () => {
  it('is reachable from every suite through inject()', async () => {
    const shared = inject('sharedCluster');
    expect(shared.replicas.map((r) => r.name)).toEqual(['r1', 'r2']);
    const client = new pg.Client({ connectionString: shared.replicas[0]!.url });
    await client.connect();
    const { rows } = await client.query('SELECT pg_is_in_recovery() AS recovering');
    await client.end();
    expect(rows[0].recovering).toBe(true);
  });
});
