import { memoryPinStore } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import {
  type App,
  collectGarbage,
  poolUsage,
  runLoad,
  SCHEMA,
  sleep,
  startApps,
  untilPoolsIdle,
} from './support.js';

// `pnpm test:soak` runs 60 s with 500 sessions; the default command runs this short version.
const SECONDS = Number(process.env.FRESHGATE_SOAK_SECONDS ?? 10);
const SESSIONS = Number(process.env.FRESHGATE_SOAK_SESSIONS ?? 60);
const POOL_SIZE = 20;
const MB = 1024 * 1024;

describe(`soak: ${SESSIONS} sessions for ${SECONDS} s over Express and Fastify`, () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  let apps: App[];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, {
      poolSize: POOL_SIZE,
      pinStore: memoryPinStore(),
      monitor: { interval: 50, quarantine: 500, breaker: { open: 200, maxOpen: 1_000 } },
    });
    await untilHealthy(freshgate);
    apps = await startApps(freshgate);
  });

  afterAll(async () => {
    await Promise.all((apps ?? []).map((a) => a.close()));
    await freshgate?.close();
    await cluster?.stop();
  });

  it(
    'random lag and a replica restart: 0 violations, 0 unexpected 5xx, heap and pools stable',
    async () => {
      // Warm-up, so that the baseline heap includes compiled code and open pools.
      const warm = runLoad({ apps, sessions: Math.min(SESSIONS, 50), thinkMs: 5 });
      await sleep(1_000);
      await warm.stop();
      await untilPoolsIdle(freshgate);
      collectGarbage();
      const heapBefore = process.memoryUsage().heapUsed;
      const poolsBefore = poolUsage(freshgate);

      const load = runLoad({
        apps,
        sessions: SESSIONS,
        reads: ['items', 'feed', 'eventual', 'strong'],
        thinkMs: 10,
      });
      const end = Date.now() + SECONDS * 1_000;
      const restartAt = Date.now() + (SECONDS * 1_000) / 2;
      let restarted = false;
      let lagChanges = 0;
      let maxBusy = 0;
      while (Date.now() < end) {
        const replica = cluster.replicas[Math.floor(Math.random() * cluster.replicas.length)]!;
        await replica.setApplyDelay(Math.random() < 0.5 ? 0 : Math.floor(Math.random() * 600));
        lagChanges++;
        if (!restarted && Date.now() >= restartAt) {
          restarted = true;
          const r2 = cluster.replica('r2');
          await r2.stop();
          await sleep(500);
          await r2.start();
        }
        for (const usage of Object.values(poolUsage(freshgate)))
          maxBusy = Math.max(maxBusy, usage.busy);
        await sleep(Math.min(1_000, Math.max(0, end - Date.now())));
      }
      const result = await load.stop();
      await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(0)));
      const poolsAfter = await untilPoolsIdle(freshgate);
      collectGarbage();
      const heapAfter = process.memoryUsage().heapUsed;
      const seconds = SECONDS;
      console.info(
        `[soak ${SESSIONS} sessions, ${seconds} s] ${result.requests} requests ` +
          `(${(result.requests / seconds).toFixed(0)}/s), ${result.report.reads} checked reads, ` +
          `${result.report.writes} writes, statuses ${JSON.stringify(result.byStatus)}, ` +
          `violations ${result.report.readYourWritesViolations}+${result.report.monotonicViolations}, ` +
          `unexpected ${JSON.stringify(result.unexpected)}, max ${result.maxMs.toFixed(0)} ms, ` +
          `${lagChanges} lag changes, r2 restarted: ${restarted}; ` +
          `heap ${(heapBefore / MB).toFixed(1)} → ${(heapAfter / MB).toFixed(1)} MB; ` +
          `pools before ${JSON.stringify(poolsBefore)} after ${JSON.stringify(poolsAfter)}, busy at most ${maxBusy}`,
      );
      expect(restarted).toBe(true);
      expect(result.report.examples).toEqual([]);
      expect(result.report.readYourWritesViolations).toBe(0);
      expect(result.report.monotonicViolations).toBe(0);
      expect(result.unexpected).toEqual([]);
      expect(result.documented503).toBe(0);
      expect(result.report.reads).toBeGreaterThan(SESSIONS * SECONDS);
      expect(new Set(result.routes.map((o) => o.route))).toEqual(
        new Set(['primary', 'replica:r1', 'replica:r2']),
      );
      // Nothing is checked out after the run, and no pool grew past its size.
      for (const [name, usage] of Object.entries(poolsAfter)) {
        expect({ name, busy: usage.busy, waiting: usage.waiting }).toEqual({
          name,
          busy: 0,
          waiting: 0,
        });
        expect(usage.total).toBeLessThanOrEqual(POOL_SIZE);
      }
      // Heap: what the run leaves behind is bounded (the checker's own history is most of it).
      expect(heapAfter - heapBefore).toBeLessThan(64 * MB + result.requests * 1_024);
    },
    (SECONDS + 90) * 1_000,
  );
});
