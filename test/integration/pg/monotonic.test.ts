import { memoryPinStore } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { counterWriter, freshgateFor, untilHealthy } from '../support.js';

describe('monotonic reads across replicas with different delays and pauses', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE counter (id int PRIMARY KEY, v bigint NOT NULL)');
    await cluster.primary.query('INSERT INTO counter VALUES (1, 0)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      pinStore: memoryPinStore(),
      selection: 'round-robin',
      monitor: { health: { exitLag: 10_000, enterLag: 10_000, enterFor: 0 } },
    });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('never shows a session a value below one it has already read (token and session-key sessions)', async () => {
    await cluster.replica('r1').setApplyDelay(150);
    const writer = await counterWriter(cluster);
    let toggling = true;
    const toggler = (async () => {
      const r2 = cluster.replica('r2');
      while (toggling) {
        await r2.pause();
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
        await r2.resume();
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      }
    })();

    const sessions = [
      {
        name: 'token',
        token: undefined as string | undefined,
        sessionKey: undefined,
        seen: 0n,
        routes: new Map<string, number>(),
      },
      {
        name: 'session-key',
        token: undefined,
        sessionKey: 'user-42',
        seen: 0n,
        routes: new Map<string, number>(),
      },
    ];
    try {
      for (let i = 0; i < 1_000; i++) {
        // Shuffle the order so that round-robin does not give each session a fixed replica.
        for (const session of Math.random() < 0.5 ? sessions : [...sessions].reverse()) {
          const { db, freshness } = await freshgate.begin({
            // Under a write every few ms a caught-up replica is a few ms behind a floor set by a
            // primary read: a short wait keeps reads on replicas, as an application would.
            contract: { contract: 'monotonic', fallback: [{ wait: '30ms' }, 'primary'] },
            token: session.token,
            sessionKey: session.sessionKey,
          });
          const { rows } = await db.query<{ v: string }>('SELECT v FROM counter WHERE id = 1');
          const v = BigInt(rows[0]!.v);
          expect(
            v,
            `${session.name} read ${v} after ${session.seen} (read ${i})`,
          ).toBeGreaterThanOrEqual(session.seen);
          session.seen = v;
          if (session.sessionKey === undefined) session.token = freshness.token ?? session.token;
          const route = freshness.headers['X-Freshness-Route']!;
          session.routes.set(route, (session.routes.get(route) ?? 0) + 1);
        }
      }
    } finally {
      toggling = false;
      await Promise.all([writer.stop(), toggler]);
      await cluster.replica('r2').resume();
      await cluster.replica('r1').setApplyDelay(0);
    }
    // The test means something only if replicas served reads too.
    for (const session of sessions) {
      const replicaReads = [...session.routes]
        .filter(([route]) => route.startsWith('replica:'))
        .reduce((n, [, c]) => n + c, 0);
      expect(
        replicaReads,
        `${session.name} routes ${JSON.stringify([...session.routes])}`,
      ).toBeGreaterThan(100);
    }
  });
});
