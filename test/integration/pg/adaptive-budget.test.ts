import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('adaptive primary budget: the data source feeds it every primary statement', () => {
  let cluster: Cluster;
  let gate: Freshgate;
  let pool: RoutedPool;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE items (id serial PRIMARY KEY, n int)');
    await cluster.waitForReplicas();
    // The default budget: adaptive.
    gate = await freshgateFor(cluster, { budget: undefined });
    await untilHealthy(gate);
    pool = new RoutedPool(gate);
  });

  afterAll(async () => {
    await pool?.end();
    await gate?.close();
    await cluster?.stop();
  });

  const samples = () => gate.status().budget.samples;

  it('starts at 200/s with nothing measured', () => {
    expect(gate.status().budget).toMatchObject({
      mode: 'adaptive',
      limit: 200,
      floor: 200,
      ceiling: 5000,
      samples: 0,
      baselineMs: null,
      admitted: { normal: 0, low: 0 },
    });
  });

  it('counts writes, strong reads, transaction statements and routed-pool statements; not replica reads', async () => {
    let before = samples();
    const count = async (expected: number, run: () => Promise<unknown>) => {
      await run();
      expect(samples() - before).toBe(expected);
      before = samples();
    };
    await count(0, async () => (await gate.begin({ contract: 'eventual' })).db.query('SELECT 1'));
    await count(1, async () => (await gate.begin()).db.query('INSERT INTO items (n) VALUES (1)'));
    await count(1, async () =>
      (await gate.begin()).db.primary().query('SELECT count(*) FROM items'),
    );
    // BEGIN, two statements, COMMIT.
    await count(4, async () =>
      (await gate.begin()).db.transaction(async (tx) => {
        await tx.query('INSERT INTO items (n) VALUES (2)');
        await tx.query('SELECT count(*) FROM items');
      }),
    );
    // Outside a request the routed pool runs on the primary; inside one, a client's
    // BEGIN … COMMIT runs on a primary connection.
    await count(1, () => pool.query('SELECT 1'));
    const req = await gate.begin();
    await count(3, () =>
      req.run(async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('INSERT INTO items (n) VALUES (3)');
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }),
    );
  });

  it('learns a baseline from them once a window closes, with the event-loop delay beside it', async () => {
    for (let i = 0; i < 10; i++) await (await gate.begin()).db.primary().query('SELECT 1');
    await sleep(300);
    await (await gate.begin()).db.primary().query('SELECT 1');
    const budget = gate.status().budget;
    // A known baseline: 0 when the loop delay covered the statements' whole latency.
    expect(budget.baselineMs).toBeGreaterThanOrEqual(0);
    expect(budget.latencyMs).toBeGreaterThanOrEqual(0);
    expect(budget.loopDelayMs).toBeGreaterThanOrEqual(0);
    expect(budget.lastChange).not.toBeNull();
    expect(budget.limit).toBeGreaterThanOrEqual(200);
  });

  it('with the replica paused, admits primary fallbacks and counts them', async () => {
    await cluster.replica('r1').pause();
    try {
      const write = await gate.begin();
      await write.db.query('INSERT INTO items (n) VALUES (4)');
      const token = write.freshness.token as string;
      const before = gate.status().budget;
      for (let i = 0; i < 20; i++) {
        const { db, freshness } = await gate.begin({ contract: 'read-your-writes', token });
        await db.query('SELECT count(*) FROM items');
        expect(freshness.headers['X-Freshness-Route']).toBe('primary');
      }
      const after = gate.status().budget;
      expect(after.admitted.normal - before.admitted.normal).toBe(20);
      expect(after.samples - before.samples).toBe(20);
      // Each fallback's slot was given back: none is left in flight; the cap is 200/s × 100 ms.
      expect(after).toMatchObject({ inFlight: 0, maxInFlight: 20 });
    } finally {
      await cluster.replica('r1').resume();
    }
  });

  it('caps fallbacks in flight: beyond limit × 100 ms at once, they wait 100 ms for a slot, then are shed (503), not queued on the primary', async () => {
    // A limit that cannot move (200/s): the cap stays where it is while the test runs.
    const fixed = await freshgateFor(cluster, { budget: { ceiling: 200 }, poolSize: 40 });
    await untilHealthy(fixed);
    // Open the pool's connections first: a connection's start-up (SCRAM) holds the event loop,
    // and forty of them would hold the 100 ms timers of the waiting fallbacks past their time.
    await Promise.all(
      Array.from({ length: 40 }, async () =>
        (await fixed.begin()).db.primary().query('SELECT pg_sleep(0.2)'),
      ),
    );
    await cluster.replica('r1').pause();
    try {
      const write = await fixed.begin();
      await write.db.query('INSERT INTO items (n) VALUES (5)');
      const token = write.freshness.token as string;
      await (await fixed.begin({ contract: 'read-your-writes', token })).db.query('SELECT 1');
      const max = fixed.status().budget.maxInFlight as number;
      expect(max).toBe(20);
      const shedBefore = fixed.status().budget.shed.normal;
      // Twice the cap at once, each fallback held 1 s on the primary (longer than it takes to decide them all).
      const outcomes = await Promise.allSettled(
        Array.from({ length: 2 * max }, async () => {
          const { db } = await fixed.begin({ contract: 'read-your-writes', token });
          await db.query('SELECT pg_sleep(1), count(*) FROM items');
        }),
      );
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(outcomes.length - refused.length).toBe(max);
      expect(refused).toHaveLength(max);
      for (const o of refused) {
        expect((o as PromiseRejectedResult).reason).toMatchObject({ statusCode: 503 });
      }
      const after = fixed.status().budget;
      expect(after.shed.normal - shedBefore).toBe(max);
      // Failed or answered, every admitted fallback's end was reported.
      expect(after.inFlight).toBe(0);
    } finally {
      await cluster.replica('r1').resume();
      await fixed.close();
    }
  });
});
