import { memoryPinStore } from '@freshgate/core';
import type { Freshgate, PoolClientLike, PoolLike } from '@freshgate/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { counterWriter, freshgateFor, untilHealthy } from '../support.js';

// Token-only clients (no session key) under `monotonic`: a replica read is followed by no
// statement of its own; the client's next token names the replica instead, and its next reads
// stick to it, or leave it after a primary position observed since. Two app instances share
// the clients, as behind a load balancer.

/**
 * The statement a replica read used to be followed by: its position, measured after it (a
 * position check before a read or a wait's poll reads `pg_last_wal_replay_lsn()` alone).
 */
const POSITION_AFTER_READ = /pg_is_in_recovery\(\) AS recovery, pg_last_wal_replay_lsn\(\)/;

interface Counts {
  connections: number;
  statements: number;
  positionReads: number;
}

const counts = (): Counts => ({ connections: 0, statements: 0, positionReads: 0 });

/** Makes the clients `pool` opens from now on count their statements (the monitor has its own). */
function countStatements(pool: PoolLike, into: Counts): void {
  pool.on?.('connect', (client: PoolClientLike) => {
    into.connections++;
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      into.statements++;
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text;
      if (text !== undefined && POSITION_AFTER_READ.test(text)) into.positionReads++;
      return query(...args);
    };
  });
}

describe('token-only monotonic reads: the token names the replica, no statement after the read', () => {
  let cluster: Cluster;
  const instances: Freshgate[] = [];
  const pools: pg.Pool[] = [];
  // Instance 0 makes its own pools, whose connections follow the servers' `in_hot_standby`
  // reports from their start; instance 1 is given the application's pools, whose connections
  // are asked once whether they are standbys.
  const own = counts();
  const given = counts();
  // Sessions known by a key share their pins between the two instances.
  const pinStore = memoryPinStore();

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE counter (id int PRIMARY KEY, v bigint NOT NULL)');
    await cluster.primary.query('INSERT INTO counter VALUES (1, 0)');
    await cluster.waitForReplicas();
    for (let i = 0; i < 2; i++) {
      const replicas = Object.fromEntries(
        cluster.replicas.map((r) => {
          if (i === 0) return [r.name, r.url];
          const pool = new pg.Pool({ connectionString: r.url, max: 4 });
          pool.on('error', () => {});
          countStatements(pool as unknown as PoolLike, given);
          pools.push(pool);
          return [r.name, pool];
        }),
      );
      const freshgate = await freshgateFor(cluster, {
        replicas,
        pinStore,
        selection: 'round-robin',
        // A replica more than 300 ms behind leaves the rotation within 100 ms: the clients on
        // it must leave it too.
        monitor: { health: { exitLag: 300, exitFor: 100, enterLag: 100, enterFor: 200 } },
      });
      if (i === 0) for (const pool of freshgate.replicas.values()) countStatements(pool, own);
      instances.push(freshgate);
      await untilHealthy(freshgate);
    }
  });

  afterAll(async () => {
    await Promise.all(instances.map((f) => f.close()));
    await Promise.all(pools.map((p) => p.end()));
    await cluster?.stop();
  });

  it('never shows a client a value below one it read, across two app instances, while the replica its token names leaves the rotation and comes back', async () => {
    await cluster.replica('r2').setApplyDelay(40);
    const writer = await counterWriter(cluster);
    // The replicas stop replaying for 1.2 s in turn: each leaves the rotation, then comes back.
    let pausing = true;
    let pauses = 0;
    const pauser = (async () => {
      while (pausing) {
        for (const name of ['r1', 'r2']) {
          await new Promise((r) => setTimeout(r, 600));
          if (!pausing) return;
          await cluster.replica(name).pause();
          pauses++;
          await new Promise((r) => setTimeout(r, 1_200));
          await cluster.replica(name).resume();
        }
      }
    })();

    const clients = Array.from({ length: 4 }, (_, i) => ({
      name: `client ${i}`,
      token: undefined as string | undefined,
      seen: 0n,
      replicaReads: 0,
      routes: new Map<string, number>(),
    }));
    let replicaReads = 0;
    let request = 0;
    // At least 8 s, and on until every client has read on both replicas (at most 30 s): on a
    // slow machine a replica can lag out of the rotation while the other one pauses, and a
    // client then goes to the primary and back to the replica it came from.
    const start = performance.now();
    const onBoth = () =>
      clients.every(
        (c) => (c.routes.get('replica:r1') ?? 0) > 0 && (c.routes.get('replica:r2') ?? 0) > 0,
      );
    try {
      while (
        performance.now() < start + 8_000 ||
        (!onBoth() && performance.now() < start + 30_000)
      ) {
        for (const client of clients) {
          // Round-robin over the two instances: each sees tokens the other issued.
          const freshgate = instances[request++ % instances.length]!;
          const { db, freshness } = await freshgate.begin({
            contract: { contract: 'monotonic', fallback: [{ wait: '30ms' }, 'primary'] },
            token: client.token,
          });
          const { rows } = await db.query<{ v: string }>('SELECT v FROM counter WHERE id = 1');
          const v = BigInt(rows[0]!.v);
          expect(v, `${client.name} read ${v} after ${client.seen}`).toBeGreaterThanOrEqual(
            client.seen,
          );
          client.seen = v;
          client.token = freshness.token ?? client.token;
          const route = freshness.headers['X-Freshness-Route']!;
          client.routes.set(route, (client.routes.get(route) ?? 0) + 1);
          if (route.startsWith('replica:')) {
            client.replicaReads++;
            replicaReads++;
          }
        }
      }
    } finally {
      pausing = false;
      await Promise.all([writer.stop(), pauser]);
      await Promise.all(cluster.replicas.map((r) => r.resume()));
      await cluster.replica('r2').setApplyDelay(0);
    }
    console.info(
      `[token claims] ${request} reads, ${replicaReads} on replicas; replica statements (reads, position checks and waits): own pools ${JSON.stringify(own)}, given pools ${JSON.stringify(given)}; ${pauses} pauses; ${clients.map((c) => `${c.name}: ${JSON.stringify([...c.routes])}`).join('; ')}`,
    );
    // No replica read was followed by a position read of its own, but the first of each
    // connection of a pool freshgate did not make.
    expect(own.positionReads).toBe(0);
    expect(own.statements).toBeGreaterThan(1_000);
    expect(given.positionReads).toBeLessThanOrEqual(given.connections);
    expect(given.statements).toBeGreaterThan(1_000);
    // The test means something only if the clients read on replicas, and on both.
    for (const client of clients) {
      expect(
        client.replicaReads,
        `${client.name}: ${JSON.stringify([...client.routes])}`,
      ).toBeGreaterThan(50);
      expect(client.routes.get('replica:r1') ?? 0).toBeGreaterThan(0);
      expect(client.routes.get('replica:r2') ?? 0).toBeGreaterThan(0);
    }
    expect(pauses).toBeGreaterThan(2);
  }, 60_000);
  it('a read-your-writes read never shows less than a monotonic read before it, for token-only and session-key clients', async () => {
    // No writes of their own: what a monotonic read on a replica leaves is "on that replica"
    // (a token's claim, a pin's node), and a read-your-writes read elsewhere could be older.
    await cluster.replica('r2').setApplyDelay(60);
    const writer = await counterWriter(cluster);
    const clients = Array.from({ length: 6 }, (_, i) => ({
      name: `client ${i}`,
      sessionKey: i % 2 === 0 ? undefined : `ryw-session-${i}`,
      token: undefined as string | undefined,
      // The highest value a monotonic read showed this client.
      floor: 0n,
      ryw: { replica: 0, total: 0 },
    }));
    let request = 0;
    const until = performance.now() + 5_000;
    try {
      while (performance.now() < until) {
        for (const client of clients) {
          const freshgate = instances[request++ % instances.length]!;
          const contract = Math.random() < 0.5 ? 'monotonic' : 'read-your-writes';
          const { db, freshness } = await freshgate.begin({
            contract,
            token: client.token,
            sessionKey: client.sessionKey,
          });
          const { rows } = await db.query<{ v: string }>('SELECT v FROM counter WHERE id = 1');
          const v = BigInt(rows[0]!.v);
          const route = freshness.headers['X-Freshness-Route']!;
          expect(
            v,
            `${client.name} (${client.sessionKey ? 'session key' : 'token only'}) read ${v} under ${contract} on ${route} after a monotonic read of ${client.floor}`,
          ).toBeGreaterThanOrEqual(client.floor);
          if (contract === 'monotonic') client.floor = v;
          else {
            client.ryw.total++;
            if (route.startsWith('replica:')) client.ryw.replica++;
          }
          if (client.sessionKey === undefined) client.token = freshness.token ?? client.token;
        }
      }
    } finally {
      await writer.stop();
      await cluster.replica('r2').setApplyDelay(0);
    }
    console.info(
      `[token claims] read-your-writes after monotonic: ${request} reads; ${clients.map((c) => `${c.name}: ${c.ryw.replica}/${c.ryw.total} on replicas`).join('; ')}`,
    );
    // Their read-your-writes reads still use replicas.
    for (const client of clients) expect(client.ryw.replica).toBeGreaterThan(client.ryw.total / 2);
  }, 60_000);
});
