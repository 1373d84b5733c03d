import { Redis } from 'ioredis';

/**
 * An ioredis client with the settings `@freshgate/redis` recommends for a pin store (fail
 * fast, auto-pipelining), so that the benchmark measures the configuration users run.
 */
export function pinStoreRedis(url: string): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: 50,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 50, 500),
    lazyConnect: true,
  });
  redis.on('error', () => {});
  return redis;
}

/** HS256 secret of every freshgate instance of a run; the load generator signs with it too. */
export const BENCH_SECRET = 'freshgate-bench-secret-0123456789abcdef';
