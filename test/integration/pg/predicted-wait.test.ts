import { type Freshgate, HotStandbyClient } from '@freshgate/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

const APPLY_DELAY_MS = 200;

describe('a wait predicted to fit the allowance (waitAllowance)', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  let writer: ReturnType<typeof setInterval>;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    await cluster.replica('r1').setApplyDelay(APPLY_DELAY_MS);
    freshgate = await freshgateFor(cluster, { waitAllowance: '300ms' });
    // Small commits keep the primary moving, so the replica's lag is measured, not idle.
    writer = setInterval(() => {
      cluster.primary.query("INSERT INTO notes (body) VALUES ('tick')").catch(() => {});
    }, 20);
    await untilHealthy(freshgate);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  });

  afterAll(async () => {
    clearInterval(writer);
    await freshgate?.close();
    await cluster?.stop();
  });

  async function writeThenRead(contract?: { contract: 'read-your-writes'; waitAllowance: 0 }) {
    const write = await freshgate.begin({ contract: 'read-your-writes' });
    const { rows } = await write.db.query<{ id: number }>(
      "INSERT INTO notes (body) VALUES ('mine') RETURNING id",
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const read = await freshgate.begin({
      contract: contract ?? 'read-your-writes',
      token: write.freshness.token!,
    });
    const started = performance.now();
    const seen = await read.db.query('SELECT body FROM notes WHERE id = $1', [rows[0]!.id]);
    return {
      route: read.freshness.headers['X-Freshness-Route'],
      rows: seen.rows.length,
      ms: performance.now() - started,
    };
  }

  it('a read 20 ms after its write, under 200 ms of lag, waits for the replica and sees the write', async () => {
    const reads = [];
    for (let i = 0; i < 5; i++) reads.push(await writeThenRead());
    expect(reads.every((r) => r.rows === 1)).toBe(true);
    // Most of them on the replica (the lag is measured; a read may still find it later than
    // predicted and go to the primary after the allowance).
    expect(reads.filter((r) => r.route === 'replica:r1').length).toBeGreaterThanOrEqual(3);
  });

  it('with the allowance at 0 the same read goes to the primary at once', async () => {
    const read = await writeThenRead({ contract: 'read-your-writes', waitAllowance: 0 });
    expect(read.rows).toBe(1);
    expect(read.route).toBe('primary');
  });

  it('requests waiting for one replica share its position reads', async () => {
    // A replica pool of the test's own that counts the position reads of waits.
    const pool = new pg.Pool({
      connectionString: cluster.replica('r1').url,
      Client: HotStandbyClient,
    });
    // As node-postgres asks of every pool: `pool.end()` resolves before its connections have
    // closed, and an idle client that meets the server's shutdown (`57P01`) makes the pool emit
    // 'error', an uncaught exception without a listener.
    pool.on('error', () => {});
    let positionReads = 0;
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
        if (String(args[0]).includes('pg_last_wal_replay_lsn')) positionReads++;
        return query(...args);
      };
    });
    const shared = await freshgateFor(cluster, { replicas: { r1: pool }, waitAllowance: '300ms' });
    try {
      await untilHealthy(shared);
      // Twenty connections open (a cold pool's connection starts would outlast the lag), and
      // the monitor has measured the lag.
      await Promise.all(Array.from({ length: 20 }, () => pool.query('SELECT 1')));
      await new Promise((resolve) => setTimeout(resolve, 500));
      positionReads = 0;
      const write = await shared.begin({ contract: 'read-your-writes' });
      const { rows } = await write.db.query<{ id: number }>(
        "INSERT INTO notes (body) VALUES ('ours') RETURNING id",
      );
      const token = write.freshness.token!;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const reads = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const read = await shared.begin({ contract: 'read-your-writes', token });
          const seen = await read.db.query('SELECT body FROM notes WHERE id = $1', [rows[0]!.id]);
          return { route: read.freshness.headers['X-Freshness-Route'], rows: seen.rows.length };
        }),
      );
      expect(reads.every((r) => r.rows === 1)).toBe(true);
      expect(reads.filter((r) => r.route === 'replica:r1').length).toBeGreaterThanOrEqual(15);
      // Their checks, then ~180 ms of waiting at the 10 ms poll interval, share the replica's
      // position reads: 11 in all here; one check each and a shared wait sent 37, one check
      // and one poll loop each 171.
      expect(positionReads).toBeLessThan(100);
    } finally {
      await shared.close();
      await pool.end();
    }
  });
});
