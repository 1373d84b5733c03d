import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectRedis, sleep } from './support.js';

// Under memory pressure an `allkeys-*` policy evicts live pins: a session then reads the past.
describe('redisPinStore: Redis maxmemory-policy', () => {
  let redis: Redis;
  let original: string;

  beforeAll(async () => {
    const url = inject('sharedCluster').redis?.url;
    if (!url) throw new Error('the shared cluster has no Redis: start it with { redis: true }');
    redis = await connectRedis(url, { commandTimeout: 2_000 });
    original = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1] as string;
  });

  afterAll(async () => {
    await redis?.config('SET', 'maxmemory-policy', original);
    await redis?.quit();
  });

  async function warningsWith(policy: string): Promise<string[]> {
    await redis.config('SET', 'maxmemory-policy', policy);
    const warnings: string[] = [];
    const store = redisPinStore(redis, {
      timeout: '2s',
      localPins: false,
      instances: false,
      onWarning: (message) => warnings.push(message),
    });
    await store.get('policy-check');
    await store.get('policy-check');
    // The check runs once, after the first answered call, without holding it up.
    await sleep(200);
    return warnings;
  }

  it('warns once at start-up when Redis may evict live pins (allkeys-*)', async () => {
    const warnings = await warningsWith('allkeys-lru');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/maxmemory-policy is allkeys-lru.*volatile-ttl/);
  });

  it('stays silent with a policy that only evicts keys with a TTL, or none', async () => {
    for (const policy of ['volatile-ttl', 'noeviction']) {
      expect(await warningsWith(policy)).toEqual([]);
    }
  });
});
