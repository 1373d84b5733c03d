import { randomUUID } from 'node:crypto';
import { createFreshgate, type Freshgate, type FreshgateOptions } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TEST_SECRET, untilHealthy } from '../support.js';
import { connectRedis, sleep } from './support.js';

const PREFIX = 'freshgate:pin-modes:';

// Pin modes end to end on the shared cluster: two freshgate instances (two app servers)
// share one Redis, so a session's pin written through one is honoured by the other.
describe('pin modes with the Redis store', () => {
  const shared = inject('sharedCluster');
  const table = `redis_pins_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const clients: Redis[] = [];
  const instances: Freshgate[] = [];

  async function server(options: Partial<FreshgateOptions>): Promise<Freshgate> {
    if (!shared.redis)
      throw new Error('the shared cluster has no Redis: start it with { redis: true }');
    const client = await connectRedis(shared.redis.url);
    clients.push(client);
    const freshgate = await createFreshgate({
      primary: shared.primary.url,
      replicas: Object.fromEntries(shared.replicas.map((r) => [r.name, r.url])),
      secret: TEST_SECRET,
      budget: false,
      monitor: { interval: 50 },
      // Each instance only sees what Redis holds: no help from this process's memory.
      // A prefix of its own: stores of other files on the shared Redis report their own instances.
      pinStore: redisPinStore(client, { localPins: false, prefix: PREFIX }),
      ...options,
    });
    instances.push(freshgate);
    await freshgate.start();
    await untilHealthy(freshgate);
    return freshgate;
  }

  async function write(freshgate: Freshgate, sessionKey: string): Promise<bigint> {
    const { freshness, db } = await freshgate.begin({ sessionKey });
    await db.query(`INSERT INTO ${table} VALUES ($1)`, [randomUUID()]);
    return freshness.requiredLsn()!;
  }

  /**
   * Waits until this instance's monitor has seen `lsn` on every replica and on the primary:
   * nodes are polled independently, and a pin ahead of the last primary sample would be
   * routed as `future-lsn` (on a busy machine the replicas' polls can come first).
   */
  async function replayedEverywhere(freshgate: Freshgate, lsn: bigint): Promise<void> {
    const deadline = Date.now() + 10_000;
    const seen = (position: bigint | null) => position !== null && position >= lsn;
    while (
      !seen(freshgate.topology.primary.currentLsn) ||
      !freshgate.topology.replicas.every((r) => seen(r.replayLsn))
    ) {
      if (Date.now() > deadline) throw new Error('replicas did not replay the write');
      await sleep(20);
    }
  }

  beforeAll(async () => {
    const first = await server({});
    const { db } = await first.begin({ contract: 'strong' });
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY)`);
  });

  afterAll(async () => {
    await Promise.all(instances.map((f) => f.close()));
    for (const client of clients) client.disconnect();
  });

  it("'lsn' (default): another server honours the pin, and a caught-up replica serves the session", async () => {
    const [a, b] = [instances[0]!, await server({})];
    const sessionKey = `lsn-${randomUUID()}`;
    const lsn = await write(a, sessionKey);
    const read = await b.engine.begin({ contract: 'read-your-writes', sessionKey });
    expect(read.requiredLsn()).toBe(lsn);
    await replayedEverywhere(b, lsn);
    const later = await b.engine.begin({ contract: 'read-your-writes', sessionKey });
    expect(later.requiredLsn()).toBe(lsn);
    expect(later.route()).toMatchObject({ kind: 'replica', reason: 'replica-caught-up' });
  });

  it("'primary': a pinned session reads the primary until the pin expires, then replicas again", async () => {
    const a = await server({ pinMode: 'primary', pinTtl: '800ms' });
    const b = await server({ pinMode: 'primary', pinTtl: '800ms' });
    const sessionKey = `primary-${randomUUID()}`;
    const lsn = await write(a, sessionKey);
    await replayedEverywhere(b, lsn);
    // Replicas have the write, yet the session stays on the primary while the pin lives.
    const pinned = await b.engine.begin({ contract: 'read-your-writes', sessionKey });
    expect(pinned.route()).toMatchObject({ kind: 'primary', reason: 'pinned-primary' });
    const other = await b.engine.begin({
      contract: 'read-your-writes',
      sessionKey: 'someone-else',
    });
    expect(other.route().kind).toBe('replica');
    await sleep(1_000);
    const expired = await b.engine.begin({ contract: 'read-your-writes', sessionKey });
    expect(expired.requiredLsn()).toBeNull();
    expect(expired.route().kind).toBe('replica');
  });

  it('a request without a session key never touches the store', async () => {
    const client = clients[0]!;
    const inner = redisPinStore(client, { localPins: false, prefix: PREFIX });
    let calls = 0;
    const counted = await server({
      pinStore: {
        get: (key) => {
          calls++;
          return inner.get(key);
        },
        extend: (key, update) => {
          calls++;
          return inner.extend(key, update);
        },
      },
    });
    const { freshness, db } = await counted.begin({});
    await db.query(`INSERT INTO ${table} VALUES ($1)`, [randomUUID()]);
    expect(freshness.token).toMatch(/^ey/);
    expect(calls).toBe(0);
    // The same request with a session key reads the pin once and extends it once.
    const keyed = await counted.begin({ sessionKey: `counted-${randomUUID()}` });
    await keyed.db.query(`INSERT INTO ${table} VALUES ($1)`, [randomUUID()]);
    expect(calls).toBe(2);
  });
});
