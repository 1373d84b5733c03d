import { METRIC_BARRIERS, METRIC_FALLBACKS, type PinStore } from '@freshgate/core';
import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { connectRedis } from '../integration/redis/support.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import {
  type App,
  CLIENT_KINDS,
  call,
  isDocumented503,
  type KindsLoadResult,
  kindsLoad,
  lagStorm,
  poolUsage,
  recordingMeter,
  SCHEMA,
  sleep,
  startApps,
} from './support.js';

const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 500,
  breaker: { open: 200, maxOpen: 1_000 },
  health: { exitLag: 1_000, exitFor: 300, enterLag: 400, enterFor: 1_000 },
};

function expectClean(result: KindsLoadResult, label: string) {
  const rate = result.requests / result.seconds;
  console.info(
    `[${label}] ${result.requests} requests in ${result.seconds.toFixed(1)} s (${rate.toFixed(0)} req/s), ` +
      `${result.report.reads} reads checked, ${result.report.writes} writes, ${result.primaryReads} primary reads, ${result.declaredStale} declared stale by /twice; ` +
      CLIENT_KINDS.map((k) => `${k}: ${result.reads[k]} reads`).join(', '),
  );
  expect(result.report.examples).toEqual([]);
  expect(result.report.readYourWritesViolations).toBe(0);
  expect(result.report.monotonicViolations).toBe(0);
  expect(result.fiveHundreds).toEqual([]);
  for (const kind of CLIENT_KINDS) {
    expect(result.reads[kind], `${kind} sessions read`).toBeGreaterThan(100);
  }
  // A noisy 2-core machine runs the databases, Redis, both apps and this load: the target is
  // ~500 req/s (reached on a quiet machine); beside a CPU hog it can fall under 100. The reads
  // per kind above keep the run meaningful; this floor only catches a stalled load.
  expect(rate).toBeGreaterThan(30);
}

describe('degraded modes under mixed load (Express and Fastify on one engine)', () => {
  let cluster: Cluster;
  let redis: Redis;
  let freshgate: Freshgate;
  let apps: App[];
  const telemetry = recordingMeter();
  // Each pin read as the engine saw it: when, and whether the store answered.
  const pinReads: { at: number; ok: boolean }[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    redis = await connectRedis(cluster.redisUrl);
    const store = redisPinStore(redis, { circuitBreaker: { open: 200 } });
    const observed: PinStore = {
      async get(key) {
        try {
          const pin = await store.get(key);
          pinReads.push({ at: performance.now(), ok: true });
          return pin;
        } catch (error) {
          pinReads.push({ at: performance.now(), ok: false });
          throw error;
        }
      },
      extend: (key, update) => store.extend(key, update),
    };
    freshgate = await freshgateFor(cluster, {
      monitor: MONITOR,
      pinStore: observed,
      cookie: true,
      // The primary budget is the engine's default, the adaptive one. A fixed 200 reads/s
      // (the old default) runs out whenever a storm phase leaves both replicas behind while
      // the load runs at the 1,500–1,900 req/s this machine gives, and answers 503.
      telemetry: { meter: telemetry.meter },
    });
    await untilHealthy(freshgate);
    apps = await startApps(freshgate);
  });

  afterAll(async () => {
    await Promise.all((apps ?? []).map((a) => a.close()));
    await freshgate?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  const primaryFallbacks = () =>
    telemetry.sum(METRIC_FALLBACKS, { 'freshgate.fallback': 'primary' });
  const admitted = () => {
    const { normal, low } = freshgate.status().budget.admitted;
    return normal + low;
  };

  it('lag storms and Redis stopped for a third of the run: 0 stale reads, 0 5xx, primary within the budget, pins used again within 2 s', async () => {
    const stopStorm = lagStorm(cluster.replica('r1'), cluster.replica('r2'));
    const fallbacksBefore = primaryFallbacks();
    const admittedBefore = admitted();
    const load = kindsLoad({
      app: (i) => apps[Math.floor(i / 3) % apps.length]!,
      sessionsPerKind: 20,
      thinkMs: 20,
    });
    await sleep(5_000);
    await cluster.redis!.stop();
    await sleep(5_000);
    await cluster.redis!.start();
    const redisBackAt = performance.now();
    await sleep(5_000);
    const result = await load.stop();
    await stopStorm();
    expectClean(result, 'lag storms + Redis stopped');

    // Every primary fallback was one the budget admitted.
    const fallbacks = primaryFallbacks() - fallbacksBefore;
    expect(fallbacks).toBeLessThanOrEqual(admitted() - admittedBefore);
    // The outage was real and took the barrier path.
    expect(pinReads.some((r) => !r.ok && r.at < redisBackAt)).toBe(true);
    expect(
      telemetry.sum(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' }),
    ).toBeGreaterThan(0);
    const pinsBackAt = pinReads.find((r) => r.ok && r.at > redisBackAt)?.at;
    expect(pinsBackAt, 'a pin read succeeded after Redis returned').toBeDefined();
    console.info(
      `[lag storms + Redis stopped] primary fallbacks ${fallbacks}, pins used again ${(pinsBackAt! - redisBackAt).toFixed(0)} ms after Redis answered`,
    );
    expect(pinsBackAt! - redisBackAt).toBeLessThan(2_000);
  });

  it('a replica killed and restarted mid-run: 0 stale reads, 0 5xx', async () => {
    const load = kindsLoad({
      app: (i) => apps[Math.floor(i / 3) % apps.length]!,
      sessionsPerKind: 20,
      thinkMs: 20,
    });
    await sleep(3_000);
    const lostBefore = telemetry.sum(METRIC_BARRIERS, {
      'freshgate.reason': 'request-replica-lost',
    });
    await cluster.replica('r1').kill();
    await sleep(3_000);
    await cluster.replica('r1').start();
    await untilHealthy(freshgate, ['r1'], 20_000);
    await sleep(2_000);
    const result = await load.stop();
    expectClean(result, 'replica killed');
    console.info(
      `[replica killed] requests that lost their replica mid-request: ${telemetry.sum(METRIC_BARRIERS, { 'freshgate.reason': 'request-replica-lost' }) - lostBefore}`,
    );
  });

  it('1,500 concurrent anonymous X-Read-After-Write requests cannot starve 10 users under an 800 ms apply delay', async () => {
    // Fairness matters when the budget is scarce: an engine of its own with a fixed 200
    // fallbacks/s, which the flood alone would spend many times over.
    const scarce = await freshgateFor(cluster, {
      monitor: MONITOR,
      cookie: true,
      budget: { rate: 200, burst: 400 },
      telemetry: { meter: telemetry.meter },
    });
    await untilHealthy(scarce);
    // This test's apps: both frameworks on the scarce engine.
    const apps = await startApps(scarce);
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(800)));
    try {
      let running = true;
      const journeys: { seen: boolean; status: number; ms: number; detail: string }[] = [];
      const users = Array.from({ length: 10 }, async (_, i) => {
        const app = apps[i % apps.length]!;
        const key = `user-${i}-${Math.random().toString(36).slice(2, 8)}`;
        while (running) {
          const started = performance.now();
          try {
            const wrote = await call(`${app.url}/items/${key}`, {
              method: 'POST',
              deadlineMs: 60_000,
            });
            const token = wrote.headers.get('x-freshness-token') ?? '';
            const version = (wrote.body as { version: number }).version;
            const read = await call(`${app.url}/items/${key}`, {
              headers: { 'x-freshness-token': token },
              deadlineMs: 60_000,
            });
            journeys.push({
              seen: read.status === 200 && (read.body as { version: number }).version >= version,
              status: read.status,
              ms: performance.now() - started,
              detail: `${wrote.status}/${read.status} ${JSON.stringify(read.body).slice(0, 120)}`,
            });
          } catch (error) {
            journeys.push({
              seen: false,
              status: 0,
              ms: performance.now() - started,
              detail: (error as Error).message,
            });
          }
          // Users pause between journeys. Without a pause the ten loops alone ask for more
          // primary fallbacks per second (every read under 800 ms lag needs one) than the
          // budget's rate on a fast machine, and the test would measure that, not the flood.
          await sleep(100);
        }
      });
      await sleep(300);
      const floodAt = performance.now();
      const flood = await Promise.all(
        Array.from({ length: 1_500 }, (_, i) =>
          call(`${apps[i % apps.length]!.url}/items/anon-${i % 50}`, {
            headers: { 'x-read-after-write': 'true' },
            deadlineMs: 60_000,
          }).then(
            (e) =>
              e.status === 200
                ? `ok ${e.headers.get('x-freshness-route')}`
                : isDocumented503(e)
                  ? '503'
                  : `other ${e.status}`,
            (error: Error) => `failed ${error.message}`,
          ),
        ),
      );
      await sleep(500);
      running = false;
      await Promise.all(users);
      const outcomes: Record<string, number> = {};
      for (const o of flood) outcomes[o] = (outcomes[o] ?? 0) + 1;
      const floodFallbacks = telemetry.sum(METRIC_FALLBACKS, { 'freshgate.reason': 'hint-no-lsn' });
      const floodBarriers = telemetry.sum(METRIC_BARRIERS, { 'freshgate.reason': 'hint-no-lsn' });
      const floodQueries = telemetry.sum(METRIC_BARRIERS, {
        'freshgate.reason': 'hint-no-lsn',
        'freshgate.barrier.source': 'query',
      });
      console.info(
        `[anonymous flood] flood outcomes ${JSON.stringify(outcomes)} in ${((performance.now() - floodAt) / 1000).toFixed(1)} s; ` +
          `${floodBarriers} barriers (${floodQueries} primary position queries), ${floodFallbacks} primary fallbacks; ` +
          `${journeys.length} user journeys, slowest ${Math.max(...journeys.map((j) => j.ms)).toFixed(0)} ms; ` +
          `pools after the flood ${JSON.stringify(poolUsage(scarce))}`,
      );
      expect(journeys.length).toBeGreaterThan(10);
      expect(journeys.filter((j) => !j.seen)).toEqual([]);
      // The flood itself gets answers or the documented 503, nothing else.
      expect(Object.keys(outcomes).filter((o) => !o.startsWith('ok ') && o !== '503')).toEqual([]);
    } finally {
      await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(0)));
      await Promise.all(apps.map((a) => a.close()));
      await scarce.close();
    }
  });
});
