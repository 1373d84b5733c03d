import { randomUUID } from 'node:crypto';
import { METRIC_STORE_FAILURES, type PinStore } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { DEFAULT_PIN_KEY_PREFIX, type RedisPinStore, redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, redisCommand, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';
import { connectRedis, countingMeter, percentile, sleep } from './support.js';

// Replicas replay 300 ms late, so a read that ignores a session's pin misses the row the
// session has just written: every read below would be a read-your-writes violation without it.
const APPLY_DELAY_MS = 300;
// The store's bound on each Redis call (its default); the client's own commandTimeout is a
// backstop far above it.
const STORE_TIMEOUT_MS = 50;

type GetOutcome = 'pin' | 'none' | 'failed';

interface Sample {
  at: number;
  ms: number;
  beginMs: number;
  writeMs: number;
  outcome: GetOutcome | undefined;
  seen: boolean;
  route: string | null;
}

describe('Redis pin store failure policy on real servers', () => {
  let cluster: Cluster;
  let redis: Redis;
  let store: RedisPinStore;
  let freshgate: Freshgate;
  const telemetry = countingMeter();
  const transitions: { at: number; to: string }[] = [];
  // Outcome of the last pin read per (hashed) session: each worker's session is sequential.
  const lastGet = new Map<string, GetOutcome>();

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY)');
    await cluster.waitForReplicas();
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
    redis = await connectRedis(cluster.redisUrl);
    store = redisPinStore(redis, {
      timeout: STORE_TIMEOUT_MS,
      circuitBreaker: { onChange: (_, to) => transitions.push({ at: performance.now(), to }) },
    });
    const observed: PinStore = {
      async get(key) {
        try {
          const pin = await store.get(key);
          lastGet.set(key, pin === undefined ? 'none' : 'pin');
          return pin;
        } catch (error) {
          lastGet.set(key, 'failed');
          throw error;
        }
      },
      extend: (key, update) => store.extend(key, update),
    };
    freshgate = await freshgateFor(cluster, {
      pinStore: observed,
      telemetry: { meter: telemetry.meter },
    });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  /** One session writes a row, then reads it back knowing only its session key. */
  async function writeThenRead(sessionKey: string, hash: string): Promise<Sample> {
    const id = randomUUID();
    const writeAt = performance.now();
    const write = await freshgate.begin({ contract: 'read-your-writes', sessionKey });
    await write.db.query('INSERT INTO notes VALUES ($1)', [id]);
    // Writes succeed and return tokens whatever the pin store does.
    if (!write.freshness.token) throw new Error('a write returned no token');
    const writeMs = performance.now() - writeAt;
    lastGet.delete(hash);
    const at = performance.now();
    const read = await freshgate.begin({ contract: 'read-your-writes', sessionKey });
    const beginMs = performance.now() - at;
    const { rowCount } = await read.db.query('SELECT 1 FROM notes WHERE id = $1', [id]);
    return {
      at,
      ms: performance.now() - at,
      beginMs,
      writeMs,
      outcome: lastGet.get(hash),
      seen: rowCount === 1,
      route: read.freshness.servedBy,
    };
  }

  /** `workers` sessions loop {@link writeThenRead} until `stop()`; errors are collected, never thrown. */
  function load(workers = 4) {
    const samples: Sample[] = [];
    const errors: unknown[] = [];
    let running = true;
    const loops = Array.from({ length: workers }, async () => {
      const sessionKey = `fault-${randomUUID()}`;
      const hash = freshgate.engine.hashSessionKey(sessionKey);
      while (running) {
        try {
          samples.push(await writeThenRead(sessionKey, hash));
        } catch (error) {
          errors.push(error);
          await sleep(5);
        }
      }
    });
    return {
      samples,
      errors,
      async stop() {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  it('without the pin, a replica misses the write (the fault below is real)', async () => {
    let missed = 0;
    for (let i = 0; i < 5; i++) {
      const id = randomUUID();
      const write = await freshgate.begin({ contract: 'read-your-writes' });
      await write.db.query('INSERT INTO notes VALUES ($1)', [id]);
      const read = await freshgate.begin({ contract: 'read-your-writes' });
      const { rowCount } = await read.db.query('SELECT 1 FROM notes WHERE id = $1', [id]);
      if (rowCount === 0 && read.freshness.servedBy?.startsWith('replica:')) missed++;
    }
    expect(missed).toBeGreaterThan(0);
  });

  it('Redis stopped mid-run: no errors, no violations, bounded p99; restarted: pins used again within 2 s', async () => {
    const run = load();
    await sleep(1_500);
    const stoppedAt = performance.now();
    const failuresBefore = telemetry.total(METRIC_STORE_FAILURES);
    await cluster.redis!.stop();
    await sleep(2_000);
    const restartAt = performance.now();
    await cluster.redis!.start();
    const restartedAt = performance.now();
    let recoveredAt: number | undefined;
    while (recoveredAt === undefined && performance.now() - restartedAt < 5_000) {
      recoveredAt = run.samples.find((s) => s.at >= restartedAt && s.outcome === 'pin')?.at;
      await sleep(20);
    }
    await sleep(300);
    await run.stop();

    const { samples, errors } = run;
    expect(errors).toEqual([]);
    // Nothing read the past, before, during or after the outage.
    expect(samples.filter((s) => !s.seen)).toEqual([]);

    const baseline = samples.filter((s) => s.at < stoppedAt);
    expect(baseline.length).toBeGreaterThan(20);
    // While Redis was up, no read missed its session's pin. A pin read can still time out
    // (50 ms) when a busy machine stalls this process; that read went to the primary, which
    // is the policy, so only most reads are required to have used the pin.
    expect(baseline.filter((s) => s.outcome === 'none')).toEqual([]);
    const pinned = baseline.filter((s) => s.outcome === 'pin').length;
    expect(pinned).toBeGreaterThanOrEqual(0.8 * baseline.length);
    expect(baseline.filter((s) => s.outcome === 'failed' && s.route !== 'primary')).toEqual([]);

    const openedAt = transitions.find((t) => t.to === 'open' && t.at >= stoppedAt)?.at;
    expect(openedAt, 'the circuit breaker opened while Redis was down').toBeDefined();
    const outage = samples.filter((s) => s.at >= openedAt! && s.at < restartAt);
    expect(outage.length).toBeGreaterThan(20);
    // Pin-only sessions read at a barrier while the store was unavailable: every read failed
    // its pin lookup and still saw its write (checked above). A replica 300 ms behind the
    // session's own write cannot serve the barrier, so the primary did.
    expect(outage.every((s) => s.outcome === 'failed' && s.route === 'primary')).toBe(true);
    expect(telemetry.total(METRIC_STORE_FAILURES) - failuresBefore).toBeGreaterThanOrEqual(
      outage.length,
    );

    const baselineP99 = percentile(
      baseline.map((s) => s.ms),
      99,
    );
    const outageP99 = percentile(
      outage.map((s) => s.ms),
      99,
    );
    expect(outageP99).toBeLessThan(baselineP99 + 100);

    expect(recoveredAt, 'a read found a pin again after the restart').toBeDefined();
    const recoveryMs = recoveredAt! - restartedAt;
    expect(recoveryMs).toBeLessThan(2_000);
    // The restarted Redis (empty: no persistence) holds pins again, written by the store.
    const [, keys] = await redis.scan('0', 'MATCH', `${DEFAULT_PIN_KEY_PREFIX}*`, 'COUNT', 1000);
    expect(keys.length).toBeGreaterThan(0);
    expect(store.circuit).toBe('closed');

    console.info(
      `[redis outage] reads: ${baseline.length} before (${pinned} with the pin, p99 ${baselineP99.toFixed(1)} ms), ` +
        `${outage.length} with the circuit open (p99 ${outageP99.toFixed(1)} ms); ` +
        `breaker opened ${(openedAt! - stoppedAt).toFixed(0)} ms after the stop; ` +
        `pins used again ${recoveryMs.toFixed(0)} ms after Redis answered PING`,
    );
  });

  it('Redis paused with CLIENT PAUSE: no request waits longer than the store timeout, no rejection left unhandled', async () => {
    const failuresBefore = telemetry.total(METRIC_STORE_FAILURES);
    const pauseMs = 1_500;
    // Replies (and ioredis's own "Command timed out") arrive after the store gave up on them:
    // those late rejections must be handled, or they would crash an application on Node >= 15.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const run = load();
    await sleep(300);
    const pausedAt = performance.now();
    expect(await redisCommand(cluster.redis!.port, `CLIENT PAUSE ${pauseMs} ALL`)).toBe('+OK');
    await sleep(1_200);
    const stopAt = performance.now();
    await run.stop();
    await sleep(pauseMs);
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);

    const { samples, errors } = run;
    expect(errors).toEqual([]);
    expect(samples.filter((s) => !s.seen)).toEqual([]);
    const paused = samples.filter((s) => s.at >= pausedAt + 20 && s.at < stopAt);
    expect(paused.length).toBeGreaterThan(10);
    // The pause bit: pin reads failed and were counted.
    expect(paused.some((s) => s.outcome === 'failed')).toBe(true);
    expect(telemetry.total(METRIC_STORE_FAILURES)).toBeGreaterThan(failuresBefore);
    // Writes reach the pause first (their pin extend), reads after them; both are bounded.
    const longestLookup = Math.max(...paused.map((s) => s.beginMs));
    const longestWrite = Math.max(...paused.map((s) => s.writeMs));
    // Some call really waited on the paused connection (and was cut off by the timeout)
    // rather than failing at once on a closed one.
    expect(Math.max(longestLookup, longestWrite)).toBeGreaterThanOrEqual(STORE_TIMEOUT_MS - 5);
    // Timer slack on a small, busy CI machine; far below the 1.5 s pause either way. A write
    // request makes two store calls (pin read, pin extend), each bounded by the timeout.
    expect(longestLookup).toBeLessThan(STORE_TIMEOUT_MS + 100);
    expect(longestWrite).toBeLessThan(2 * STORE_TIMEOUT_MS + 200);
    console.info(
      `[redis paused] ${paused.length} write+read pairs; longest pin lookup ${longestLookup.toFixed(1)} ms, ` +
        `longest write ${longestWrite.toFixed(1)} ms (store timeout ${STORE_TIMEOUT_MS} ms, pause ${pauseMs} ms)`,
    );
  });

  it("onStoreError 'token-only': with Redis down, writes still return tokens and a token still protects its reads", async () => {
    const tokenOnly = await freshgateFor(cluster, {
      pinStore: redisPinStore(redis),
      onStoreError: 'token-only',
    });
    try {
      await untilHealthy(tokenOnly);
      await cluster.redis!.stop();
      const sessionKey = `token-only-${randomUUID()}`;
      const id = randomUUID();
      const write = await tokenOnly.begin({ contract: 'read-your-writes', sessionKey });
      await write.db.query('INSERT INTO notes VALUES ($1)', [id]);
      const token = write.freshness.token;
      expect(token).toMatch(/^ey/);
      const read = await tokenOnly.begin({
        contract: 'read-your-writes',
        sessionKey,
        token: token!,
      });
      const { rowCount } = await read.db.query('SELECT 1 FROM notes WHERE id = $1', [id]);
      expect(rowCount).toBe(1);
      // The failed pin read did not send the session to the primary: only the token did.
      const pinOnly = await tokenOnly.engine.begin({ contract: 'read-your-writes', sessionKey });
      expect(pinOnly.requiredLsn()).toBeNull();
      expect(pinOnly.route().reason).not.toBe('store-unavailable');
    } finally {
      await cluster.redis!.start();
      await tokenOnly.close();
    }
  });
});
