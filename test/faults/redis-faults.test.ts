import { METRIC_STORE_FAILURES } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, redisCommand, startCluster } from '../harness/index.js';
import { connectRedis } from '../integration/redis/support.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import { type App, recordingMeter, runLoad, SCHEMA, sleep, startApps } from './support.js';

describe('Redis down, paused and restarted under HTTP load (Express and Fastify)', () => {
  let cluster: Cluster;
  let redis: Redis;
  let freshgate: Freshgate;
  let apps: App[];
  const telemetry = recordingMeter();

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    // Replicas replay late: a session whose pin is ignored would miss its own write.
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(200)));
    redis = await connectRedis(cluster.redisUrl);
    freshgate = await freshgateFor(cluster, {
      pinStore: redisPinStore(redis),
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

  it('stop, restart and CLIENT PAUSE: no violation, no 5xx, failures counted, pins used again', async () => {
    const load = runLoad({ apps, sessions: 16, reads: ['items', 'feed', 'eventual'] });
    await sleep(800);
    const failuresBefore = telemetry.sum(METRIC_STORE_FAILURES);
    await cluster.redis!.stop();
    await sleep(1_500);
    const duringStop = telemetry.sum(METRIC_STORE_FAILURES) - failuresBefore;
    await cluster.redis!.start();
    await sleep(1_500);
    const afterRestart = telemetry.sum(METRIC_STORE_FAILURES);
    expect(await redisCommand(cluster.redis!.port, 'CLIENT PAUSE 1000 ALL')).toBe('+OK');
    await sleep(1_500);
    const duringPause = telemetry.sum(METRIC_STORE_FAILURES) - afterRestart;
    await sleep(1_000);
    const result = await load.stop();
    console.info(
      `[redis faults] ${result.requests} requests, statuses ${JSON.stringify(result.byStatus)}, ` +
        `store failures: ${duringStop} while stopped, ${duringPause} while paused, max ${result.maxMs.toFixed(0)} ms`,
    );
    expect(result.report.examples).toEqual([]);
    expect(result.report.readYourWritesViolations).toBe(0);
    expect(result.report.monotonicViolations).toBe(0);
    expect(result.unexpected).toEqual([]);
    expect(result.documented503).toBe(0);
    // The faults were real, and counted by operation.
    expect(duringStop).toBeGreaterThan(0);
    expect(duringPause).toBeGreaterThan(0);
    expect(
      telemetry.sum(METRIC_STORE_FAILURES, { 'freshgate.store.operation': 'get' }),
    ).toBeGreaterThan(0);
    // Nothing waited on Redis for long.
    expect(result.maxMs).toBeLessThan(2_000);
    // Pins are written again after the restart.
    const keys = await redis.keys('freshgate:pin:*');
    expect(keys.length).toBeGreaterThan(0);
  });
});
