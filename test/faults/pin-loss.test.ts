import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { type RedisPinStore, redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { connectRedis } from '../integration/redis/support.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import {
  type App,
  CLIENT_KINDS,
  cuttableRedis,
  FRAMEWORKS,
  type KindsLoadResult,
  kindsLoad,
  SCHEMA,
  sleep,
  startApp,
} from './support.js';

// Two app instances (one Express, one Fastify), each with its own engine, monitor, pools,
// Redis client and pin store, sharing one Redis and one cluster; every request of a session
// goes to either instance at random, as behind a load balancer without stickiness.
const BUDGET = { rate: 200, burst: 400 };
const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 500,
  breaker: { open: 200, maxOpen: 1_000 },
  health: { exitLag: 1_000, exitFor: 300, enterLag: 400, enterFor: 1_000 },
};
interface Instance {
  hook: { client: Redis; cut: boolean };
  redis: Redis;
  store: RedisPinStore;
  freshgate: Freshgate;
  app: App;
}

function expectClean(result: KindsLoadResult, label: string) {
  console.info(
    `[${label}] ${result.requests} requests in ${result.seconds.toFixed(1)} s, ` +
      `${result.report.reads} reads checked, ${result.declaredStale} declared stale by /twice, ${result.report.writes} writes; ` +
      CLIENT_KINDS.map((k) => `${k}: ${result.reads[k]} reads`).join(', '),
  );
  expect(result.report.examples).toEqual([]);
  expect(result.report.readYourWritesViolations).toBe(0);
  expect(result.report.monotonicViolations).toBe(0);
  expect(result.fiveHundreds).toEqual([]);
  // Enough reads of every kind to make the run meaningful, even beside a CPU hog (key-only
  // sessions are the slowest there: barrier reads, and writes held while pins fail).
  for (const kind of CLIENT_KINDS) expect(result.reads[kind], `${kind} reads`).toBeGreaterThan(20);
}

describe('lost pins with two app instances (Express and Fastify, one Redis)', () => {
  let cluster: Cluster;
  let admin: Redis;
  let instances: Instance[] = [];
  let storming = false;
  let storm: Promise<void> = Promise.resolve();
  let redisStopped = false;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    // The test's own client: patient, so that a busy machine does not fail its commands.
    admin = await connectRedis(cluster.redisUrl, { commandTimeout: 5_000 });
  });

  afterAll(async () => {
    admin?.disconnect();
    await cluster?.stop();
  });

  async function startInstances(): Promise<void> {
    instances = await Promise.all(
      FRAMEWORKS.map(async (framework) => {
        // Timeouts generous for a busy 2-core machine: the faults here fail calls at once.
        const redis = await connectRedis(cluster.redisUrl, { commandTimeout: 1_000 });
        const hook = cuttableRedis(redis);
        const store = redisPinStore(hook.client, { timeout: '1s', circuitBreaker: { open: 200 } });
        const freshgate = await freshgateFor(cluster, {
          monitor: MONITOR,
          pinStore: store,
          pinStoreTimeout: '1s',
          cookie: true,
          budget: BUDGET,
        });
        await untilHealthy(freshgate);
        return { hook, redis, store, freshgate, app: await startApp(framework, freshgate) };
      }),
    );
  }

  /**
   * One replica paused at a time, the other replaying 300–800 ms late, until the test ends: no
   * replica is ever fresh, so a read that misses a lost pin shows up as a stale read.
   */
  function startStorm(): void {
    const [r1, r2] = cluster.replicas as [Cluster['replicas'][number], Cluster['replicas'][number]];
    storming = true;
    storm = (async () => {
      const phases: [() => Promise<unknown>, () => Promise<unknown>][] = [
        [
          () => Promise.all([r1.pause(), r2.setApplyDelay(300)]),
          () => Promise.all([r1.resume(), r2.setApplyDelay(0)]),
        ],
        [
          () => Promise.all([r1.setApplyDelay(500), r2.setApplyDelay(800)]),
          () => Promise.all([r1.setApplyDelay(0), r2.setApplyDelay(0)]),
        ],
        [
          () => Promise.all([r2.pause(), r1.setApplyDelay(300)]),
          () => Promise.all([r2.resume(), r1.setApplyDelay(0)]),
        ],
      ];
      for (let i = 0; storming; i++) {
        const [enter, leave] = phases[i % phases.length]!;
        await enter();
        await sleep(1_200);
        await leave();
        await sleep(200);
      }
    })();
  }

  /** Whether each store vouched for absence, sampled every 50 ms until stopped. */
  function sampleTrust() {
    const untrusted = instances.map(() => 0);
    const timer = setInterval(() => {
      instances.forEach((instance, i) => {
        if (!instance.store.vouch().complete) untrusted[i]!++;
      });
    }, 50);
    return () => {
      clearInterval(timer);
      return untrusted;
    };
  }

  afterEach(async () => {
    storming = false;
    await storm;
    await Promise.all(instances.map((i) => i.app.close()));
    await Promise.all(instances.map((i) => i.store.close()));
    await Promise.all(instances.map((i) => i.freshgate.close()));
    for (const i of instances) i.redis.disconnect();
    instances = [];
    if (redisStopped) {
      await cluster.redis!.start();
      redisStopped = false;
    }
    await admin.flushall().catch(() => {});
  });

  it('Redis stopped for a third of the run, then restarted empty: 0 stale reads, 0 5xx; epoch change seen, failed pins written back', async () => {
    await startInstances();
    startStorm();
    const run = kindsLoad({
      app: () => instances[Math.floor(Math.random() * instances.length)]!.app,
      sessionsPerKind: 6,
      thinkMs: 20,
      deadlineMs: 15_000,
    });
    const trust = sampleTrust();
    await sleep(4_000);
    redisStopped = true;
    await cluster.redis!.stop();
    await sleep(5_000);
    await cluster.redis!.start();
    redisStopped = false;
    await sleep(5_000);
    const untrusted = trust();
    const result = await run.stop();
    expectClean(result, 'two instances, Redis restarted empty');
    const stats = instances.map((i) => i.store.stats());
    console.info(
      `[two instances, Redis restarted empty] stores ${JSON.stringify(stats)}, untrusted samples ${untrusted}`,
    );
    for (const s of stats) expect(s.epochChanges).toBeGreaterThan(0);
    expect(stats.reduce((n, s) => n + s.writtenBack, 0)).toBeGreaterThan(0);
    for (const n of untrusted) expect(n).toBeGreaterThan(0);
  });

  it('FLUSHALL mid-run: 0 stale reads, 0 5xx; both instances see the epoch change', async () => {
    await startInstances();
    startStorm();
    const run = kindsLoad({
      app: () => instances[Math.floor(Math.random() * instances.length)]!.app,
      sessionsPerKind: 6,
      thinkMs: 20,
      deadlineMs: 15_000,
    });
    const trust = sampleTrust();
    await sleep(5_000);
    await admin.flushall();
    await sleep(8_000);
    const untrusted = trust();
    const result = await run.stop();
    expectClean(result, 'two instances, FLUSHALL');
    const stats = instances.map((i) => i.store.stats());
    console.info(
      `[two instances, FLUSHALL] stores ${JSON.stringify(stats)}, untrusted samples ${untrusted}`,
    );
    for (const s of stats) expect(s.epochChanges).toBeGreaterThan(0);
    for (const n of untrusted) expect(n).toBeGreaterThan(0);
  });

  it('one instance cut off from Redis while the other keeps it: 0 stale reads, 0 5xx; its failed pins written back', async () => {
    await startInstances();
    startStorm();
    const [cut, other] = instances as [Instance, Instance];
    const run = kindsLoad({
      app: () => instances[Math.floor(Math.random() * instances.length)]!.app,
      sessionsPerKind: 6,
      thinkMs: 20,
      deadlineMs: 15_000,
    });
    const trust = sampleTrust();
    await sleep(4_000);
    cut.hook.cut = true;
    await sleep(5_000);
    cut.hook.cut = false;
    await sleep(5_000);
    const untrusted = trust();
    const result = await run.stop();
    expectClean(result, 'two instances, one cut off');
    const stats = instances.map((i) => i.store.stats());
    console.info(
      `[two instances, one cut off] stores ${JSON.stringify(stats)}, untrusted samples ${untrusted}`,
    );
    // The other instance noticed the cut one missing, and the cut one wrote back what failed.
    expect(untrusted[1]).toBeGreaterThan(0);
    expect(stats[0]!.writtenBack).toBeGreaterThan(0);
    expect(stats[0]!.writeBackPending).toBe(0);
    // Nothing was lost in Redis itself.
    expect(other.store.stats().epochChanges).toBe(0);
  });
});
