import { parseLsn } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

/** A real pg.Pool that records every statement its clients send. */
function countingPool(url: string, log: string[]): pg.Pool {
  const pool = new pg.Pool({ connectionString: url });
  // As node-postgres asks of every pool: an idle client's error (the server shutting down at
  // the end of the suite) must not become an uncaught exception.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      log.push(typeof first === 'string' ? first : (first as { text: string }).text);
      return query(...args);
    };
  });
  return pool;
}

describe('round trips', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  const primaryLog: string[] = [];
  const replicaLog: string[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      primary: countingPool(cluster.primary.url, primaryLog),
      replicas: Object.fromEntries(
        cluster.replicas.map((r) => [r.name, countingPool(r.url, replicaLog)]),
      ),
    });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await Promise.all([freshgate.primary, ...freshgate.replicas.values()].map((p) => p.end()));
    await cluster?.stop();
  });

  it('a read whose required LSN the cached position satisfies sends exactly one statement', async () => {
    const write = await freshgate.begin({ contract: 'read-your-writes' });
    await write.db.query("INSERT INTO notes (body) VALUES ('x')");
    const token = write.freshness.token!;
    // The primary's position now is at or past the commit LSN in the token.
    const [position] = await cluster.primary.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    const required = parseLsn(position!.lsn);
    await waitFor('the monitor to see a replica at the commit LSN', () =>
      freshgate.topology.replicas.some((r) => r.replayLsn !== null && r.replayLsn >= required)
        ? true
        : undefined,
    );
    primaryLog.length = 0;
    replicaLog.length = 0;
    const read = await freshgate.begin({ contract: 'read-your-writes', token });
    await read.db.query('SELECT body FROM notes');
    expect(read.freshness.headers['X-Freshness-Route']).toMatch(/^replica:/);
    expect(replicaLog).toEqual(['SELECT body FROM notes']);
    expect(primaryLog).toEqual([]);
  });

  it('an autocommit write adds one statement (the commit LSN), a transaction adds none', async () => {
    primaryLog.length = 0;
    const write = await freshgate.begin({ contract: 'read-your-writes' });
    await write.db.query("INSERT INTO notes (body) VALUES ('y')");
    expect(primaryLog).toEqual([
      "INSERT INTO notes (body) VALUES ('y')",
      'SELECT pg_current_wal_lsn()::text AS lsn',
    ]);

    primaryLog.length = 0;
    const tx = await freshgate.begin({ contract: 'read-your-writes' });
    await tx.db.transaction(async (t) => {
      await t.query("INSERT INTO notes (body) VALUES ('z')");
    });
    expect(primaryLog).toEqual([
      'BEGIN',
      "INSERT INTO notes (body) VALUES ('z')",
      'COMMIT; SELECT pg_current_wal_lsn()::text AS lsn',
    ]);
    expect(tx.freshness.token).toMatch(/^ey/);
  });

  it('a token another app instance issued after this instance last sampled the primary needs no look at the primary', async () => {
    // Another instance of the app, on the same cluster and secret, whose monitor sampled the
    // primary once, at its start.
    const otherPrimaryLog: string[] = [];
    const otherReplicaLog: string[] = [];
    const decisions: string[] = [];
    const other = await freshgateFor(cluster, {
      telemetry: { onDecision: (d) => decisions.push(`${d.kind} ${d.reason}`) },
      primary: countingPool(cluster.primary.url, otherPrimaryLog),
      replicas: Object.fromEntries(
        cluster.replicas.map((r) => [r.name, countingPool(r.url, otherReplicaLog)]),
      ),
      monitor: { interval: 60_000 },
    });
    try {
      await untilHealthy(other);
      const sampled = other.topology.primary.currentLsn!;
      // This instance takes a write a second later: the token is issued after the other's sample.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const write = await freshgate.begin({ contract: 'read-your-writes' });
      await write.db.query("INSERT INTO notes (body) VALUES ('from another instance')");
      const token = write.freshness.token!;
      await cluster.waitForReplicas();
      otherPrimaryLog.length = 0;
      otherReplicaLog.length = 0;
      decisions.length = 0;
      const read = await other.begin({ contract: 'read-your-writes', token });
      expect(read.freshness.requiredLsn()! > sampled).toBe(true);
      const { rows } = await read.db.query(
        "SELECT body FROM notes WHERE body = 'from another instance'",
      );
      expect(rows).toHaveLength(1);
      // One position check of a replica, then the read there; no barrier (the primary's
      // position observed first) and nothing on the primary.
      expect(decisions).toEqual(['check replica-behind', 'replica replica-caught-up']);
      expect(read.freshness.headers['X-Freshness-Route']).toMatch(/^replica:/);
      expect(otherPrimaryLog).toEqual([]);
      expect(otherReplicaLog).toEqual([
        'SELECT pg_last_wal_replay_lsn()::text AS lsn',
        "SELECT body FROM notes WHERE body = 'from another instance'",
      ]);
    } finally {
      await other.close();
      await Promise.all([other.primary, ...other.replicas.values()].map((p) => p.end()));
    }
  });
});
