import { randomUUID } from 'node:crypto';
import { type ContractInput, METRIC_BARRIERS, type TelemetryOptions } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, redisCommand, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';
import { connectRedis, sleep } from './support.js';

/** Counts points per metric name and attribute set. */
function attributeMeter() {
  const points: { name: string; attributes: Record<string, unknown> }[] = [];
  const instrument = (name: string) => ({
    add: (_: number, attributes: Record<string, unknown> = {}) => points.push({ name, attributes }),
    record: () => {},
  });
  const meter = { createCounter: instrument, createHistogram: instrument };
  return {
    meter: meter as unknown as NonNullable<TelemetryOptions['meter']>,
    count: (name: string, attributes: Record<string, unknown> = {}) =>
      points.filter(
        (p) =>
          p.name === name && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
      ).length,
  };
}

// A barrier read may wait this long for a replica before the primary.
const WAITING: ContractInput = {
  contract: 'read-your-writes',
  fallback: [{ wait: '2s' }, 'primary'],
};

describe('barrier reads on real replicas and Redis', () => {
  let cluster: Cluster;
  let redis: Redis;
  let freshgate: Freshgate;
  const telemetry = attributeMeter();

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, replicaNames: ['a', 'b'], redis: true });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY)');
    await cluster.waitForReplicas();
    redis = await connectRedis(cluster.redisUrl);
    freshgate = await freshgateFor(cluster, {
      pinStore: redisPinStore(redis),
      telemetry: { meter: telemetry.meter },
      // Lag below these never makes a replica unhealthy: the barrier, not health, decides.
      monitor: { health: { exitLag: 5_000, enterLag: 4_000, enterFor: 0 } },
    });
    await untilHealthy(freshgate);
  });

  afterEach(async () => {
    await Promise.all(
      cluster.replicas.map(async (r) => {
        if ((await r.pauseState()) !== 'not paused') await r.resume();
        await r.setApplyDelay(0);
      }),
    );
    if (!(await redisCommand(cluster.redis!.port, 'PING').catch(() => ''))) {
      await cluster.redis!.start();
    }
  });

  afterAll(async () => {
    await freshgate?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  /** A row written by someone else (no token, no pin): acknowledged before the read starts. */
  async function foreignWrite(): Promise<string> {
    const id = randomUUID();
    await cluster.primary.query('INSERT INTO notes VALUES ($1)', [id]);
    return id;
  }

  async function read(id: string, input: Parameters<Freshgate['begin']>[0]) {
    const started = performance.now();
    const request = await freshgate.begin(input);
    const { rowCount } = await request.db.query('SELECT 1 FROM notes WHERE id = $1', [id]);
    return {
      seen: rowCount === 1,
      route: request.freshness.servedBy,
      ms: performance.now() - started,
    };
  }

  it('X-Read-After-Write without a token sees every write acknowledged before it, from a replica', async () => {
    const before = telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'hint-no-lsn' });
    for (let i = 0; i < 10; i++) {
      const id = await foreignWrite();
      const r = await read(id, { contract: WAITING, readAfterWrite: 'true' });
      expect(r.seen).toBe(true);
      expect(r.route).toMatch(/^replica:/);
    }
    expect(telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'hint-no-lsn' }) - before).toBe(
      10,
    );
  });

  it('paused replica: the barrier read goes to the replica that replayed the position', async () => {
    await cluster.replica('a').pause();
    for (let i = 0; i < 5; i++) {
      const id = await foreignWrite();
      const r = await read(id, { contract: WAITING, readAfterWrite: 'true' });
      expect(r).toMatchObject({ seen: true, route: 'replica:b' });
    }
  });

  it('delayed replicas: the read waits within the route budget for a replica, or goes to the primary without one', async () => {
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(400)));
    const id = await foreignWrite();
    const waited = await read(id, { contract: WAITING, readAfterWrite: 'true' });
    expect(waited.seen).toBe(true);
    expect(waited.route).toMatch(/^replica:/);
    // The replicas had not replayed the write when the read arrived: it waited for them.
    expect(waited.ms).toBeGreaterThan(100);
    const other = await foreignWrite();
    const direct = await read(other, { contract: 'read-your-writes', readAfterWrite: 'true' });
    expect(direct).toMatchObject({ seen: true, route: 'primary' });
  });

  it('store down (Redis stopped): a session-key-only read sees its write at a barrier; a token needs no barrier', async () => {
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(300)));
    const sessionKey = `s-${randomUUID()}`;
    const write = await freshgate.begin({ sessionKey });
    const id = randomUUID();
    await write.db.query('INSERT INTO notes VALUES ($1)', [id]);
    const token = write.freshness.token!;
    await cluster.redis!.stop();
    const before = telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' });
    const keyOnly = await read(id, { contract: WAITING, sessionKey });
    expect(keyOnly).toMatchObject({ seen: true });
    expect(keyOnly.route).toMatch(/^replica:/);
    expect(telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' })).toBe(
      before + 1,
    );
    await sleep(400);
    const withToken = await read(id, { contract: WAITING, sessionKey, token });
    expect(withToken.seen).toBe(true);
    expect(withToken.route).toMatch(/^replica:/);
    expect(telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' })).toBe(
      before + 1,
    );
  });

  it('store slow (CLIENT PAUSE): the pin read times out, the read takes a barrier and sees the write', async () => {
    const sessionKey = `s-${randomUUID()}`;
    const write = await freshgate.begin({ sessionKey });
    const id = randomUUID();
    await write.db.query('INSERT INTO notes VALUES ($1)', [id]);
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(300)));
    const other = randomUUID();
    const again = await freshgate.begin({ sessionKey });
    await again.db.query('INSERT INTO notes VALUES ($1)', [other]);
    expect(await redisCommand(cluster.redis!.port, 'CLIENT PAUSE 1500 ALL')).toBe('+OK');
    const before = telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' });
    const r = await read(other, { contract: WAITING, sessionKey });
    expect(r.seen).toBe(true);
    expect(telemetry.count(METRIC_BARRIERS, { 'freshgate.reason': 'store-unavailable' })).toBe(
      before + 1,
    );
    // Bounded by the store timeout and the replica's 300 ms delay, not the 1.5 s pause.
    expect(r.ms).toBeLessThan(1_400);
    await sleep(1_500);
  });

  it('a flood of concurrent barrier reads shares primary round trips', async () => {
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(200)));
    const id = await foreignWrite();
    const query = () => telemetry.count(METRIC_BARRIERS, { 'freshgate.barrier.source': 'query' });
    const before = query();
    const total = () => telemetry.count(METRIC_BARRIERS);
    const totalBefore = total();
    const reads = await Promise.all(
      Array.from({ length: 300 }, () => read(id, { contract: WAITING, readAfterWrite: 'true' })),
    );
    expect(reads.every((r) => r.seen)).toBe(true);
    expect(total() - totalBefore).toBe(300);
    // One round trip in flight and one queued behind it at any time: far fewer than reads.
    expect(query() - before).toBeLessThan(60);
    console.info(`[barrier flood] 300 reads, ${query() - before} primary position queries`);
  });
});
