import { randomUUID } from 'node:crypto';
import { memoryPinStore, type PinStore } from '@freshgate/core';
import { ManualClock, pinStoreContract } from '@freshgate/core/testing';
import { DEFAULT_PIN_KEY_PREFIX, type RedisPinStore, redisPinStore } from '@freshgate/redis';
import type { Redis, Cluster as RedisClusterClient } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type RedisCluster, startRedisCluster } from '../../harness/index.js';
import { connectRedis, connectRedisCluster, randomLsn, sleep } from './support.js';

// The same suite over every store: memory, standalone Redis (the shared cluster's) and a real
// 3-master Redis Cluster. Redis runs with `localPins` off, so that Redis alone answers, and
// once with it on (the default), which must not change the behaviour.
const CONTRACT_STORE_OPTIONS = { timeout: '2s', localPins: false } as const;
// Generous per-command timeout: these tests are about behaviour, not speed.
const CLIENT_OVERRIDES = { commandTimeout: 2_000 };

let standalone: Promise<Redis> | undefined;
function standaloneClient(): Promise<Redis> {
  const url = inject('sharedCluster').redis?.url;
  if (!url) throw new Error('the shared cluster has no Redis: start it with { redis: true }');
  standalone ??= connectRedis(url, CLIENT_OVERRIDES);
  return standalone;
}

let cluster: Promise<{ servers: RedisCluster; client: RedisClusterClient }> | undefined;
function redisCluster() {
  cluster ??= (async () => {
    const servers = await startRedisCluster({ masters: 3 });
    const client = await connectRedisCluster(servers.startupNodes, CLIENT_OVERRIDES);
    return { servers, client };
  })();
  return cluster;
}

afterAll(async () => {
  await (await standalone)?.quit();
  const c = await cluster;
  await c?.client.quit();
  await c?.servers.stop();
});

const sleeping = { advance: sleep };

pinStoreContract('memoryPinStore', () => {
  const clock = new ManualClock();
  return { store: memoryPinStore({ clock }), advance: async (ms) => clock.advance(ms) };
});
pinStoreContract('redisPinStore (standalone)', async () => ({
  store: redisPinStore(await standaloneClient(), CONTRACT_STORE_OPTIONS),
  ...sleeping,
}));
pinStoreContract('redisPinStore (standalone, localPins on)', async () => ({
  store: redisPinStore(await standaloneClient(), { timeout: '2s' }),
  ...sleeping,
}));
pinStoreContract('redisPinStore (Redis Cluster, 3 masters)', async () => ({
  store: redisPinStore((await redisCluster()).client, CONTRACT_STORE_OPTIONS),
  ...sleeping,
}));

type Target = { name: string; client: () => Promise<Redis | RedisClusterClient> };
const TARGETS: Target[] = [
  { name: 'standalone', client: standaloneClient },
  { name: 'Redis Cluster', client: async () => (await redisCluster()).client },
];

for (const target of TARGETS) {
  describe(`redisPinStore on ${target.name}`, () => {
    it('100 parallel writes of one session with random 64-bit LSNs leave the maximum in Redis', async () => {
      const client = await target.client();
      const store: RedisPinStore = redisPinStore(client, CONTRACT_STORE_OPTIONS);
      const session = `concurrency-${randomUUID()}`;
      const lsns = Array.from({ length: 100 }, randomLsn);
      await Promise.all(lsns.map((lsn) => store.extend(session, { lsn, ttlMs: 5_000 })));
      let max = 0n;
      for (const lsn of lsns) if (lsn > max) max = lsn;
      expect((await store.get(session))?.lsn).toBe(max);
      // And in Redis itself: exactly one key for the session, holding the maximum.
      const raw = await valuesUnder(client, `${DEFAULT_PIN_KEY_PREFIX}*`, (v) =>
        v.includes(max.toString(16).padStart(16, '0')),
      );
      expect(raw).toHaveLength(1);
    });

    it('writes no raw session id, and restarts the TTL in Redis on every write', async () => {
      const client = await target.client();
      const prefix = `fg-raw-${randomUUID().slice(0, 8)}:`;
      const store = redisPinStore(client, { ...CONTRACT_STORE_OPTIONS, prefix });
      const session = `sess:raw-${randomUUID()}`;
      await store.extend(session, { lsn: 42n, node: 'replica:r1', ttlMs: 400 });
      const keys = await keysUnder(client, `${prefix}*`);
      expect(keys).toHaveLength(1);
      const [key] = keys as [string];
      expect(key).not.toContain(session);
      expect(await client.get(key)).not.toContain(session);
      await sleep(250);
      expect(await client.pttl(key)).toBeLessThanOrEqual(150);
      await store.extend(session, { lsn: 1n, ttlMs: 400 });
      expect(await client.pttl(key)).toBeGreaterThan(250);
      expect(await store.get(session)).toMatchObject({ lsn: 42n, node: 'replica:r1' });
    });
  });
}

describe('redisPinStore on standalone Redis', () => {
  it('reads a pin and the store generation with one command (a script), found or not', async () => {
    const url = inject('sharedCluster').redis?.url as string;
    const client = await connectRedis(url, { ...CLIENT_OVERRIDES, enableAutoPipelining: false });
    try {
      // One heartbeat (at the start), none while the reads below are counted.
      const store = redisPinStore(client, {
        ...CONTRACT_STORE_OPTIONS,
        instances: { heartbeat: '1h', overdue: '2h' },
      });
      const session = `one-command-${randomUUID()}`;
      await store.extend(session, { lsn: 7n, ttlMs: 5_000 });
      // Loads the script into Redis (EVALSHA, then EVAL once) and checks the eviction policy.
      await store.get(session);
      const sent: string[] = [];
      const send = client.sendCommand.bind(client);
      client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
        sent.push(command.name);
        return (send as (...args: unknown[]) => unknown)(command, ...rest);
      }) as typeof client.sendCommand;
      expect(await store.get(session)).toMatchObject({ lsn: 7n });
      expect(await store.get(`absent-${randomUUID()}`)).toBeUndefined();
      expect(sent).toEqual(['evalsha', 'evalsha']);
      await store.close();
    } finally {
      client.disconnect();
    }
  });
});

describe('redisPinStore on Redis Cluster', () => {
  it('spreads sessions over the masters (keys carry no hash tag)', async () => {
    const { client } = await redisCluster();
    const prefix = `fg-spread-${randomUUID().slice(0, 8)}:`;
    const store: PinStore = redisPinStore(client, { ...CONTRACT_STORE_OPTIONS, prefix });
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => store.extend(`s${i}`, { lsn: 1n, ttlMs: 5_000 })),
    );
    const perMaster = await Promise.all(
      client
        .nodes('master')
        .map(
          async (node) =>
            (await scanAll(node, `${prefix}*`)).filter((k) => k !== `${prefix}meta`).length,
        ),
    );
    expect(perMaster.reduce((a, b) => a + b, 0)).toBe(30);
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });
});

async function scanAll(node: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

async function keysUnder(client: Redis | RedisClusterClient, match: string): Promise<string[]> {
  const nodes =
    'nodes' in client && typeof client.nodes === 'function'
      ? client.nodes('master')
      : [client as Redis];
  // Besides pins, a store keeps one hash per prefix (`<prefix>meta`: generation, heartbeats).
  const meta = `${match.slice(0, -1)}meta`;
  return (await Promise.all(nodes.map((n) => scanAll(n, match)))).flat().filter((k) => k !== meta);
}

async function valuesUnder(
  client: Redis | RedisClusterClient,
  match: string,
  keep: (value: string) => boolean,
): Promise<string[]> {
  const keys = await keysUnder(client, match);
  const values = await Promise.all(keys.map((k) => client.get(k)));
  return values.filter((v): v is string => v !== null && keep(v));
}
