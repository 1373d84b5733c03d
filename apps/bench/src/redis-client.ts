import { Redis } from 'ioredis';

/**
 * An ioredis client with the settings `@freshgate/redis` recommends for a pin store (fail
 * fast, auto-pipelining), so that the benchmark measures the configuration users run.
 */
export function pinStoreRedis(url: string): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 50, 500),
    lazyConnect: true,
  });
  redis.on('error', () => {});
  return redis;
}

/**
 * A client for the harness's own Redis calls (INFO counters, the round-trip probe): the pin
 * store's 50 ms timeout is right for a request path, but on a busy machine an INFO
 * may take longer, and a measurement must wait for it rather than fail the run. A hung Redis
 * still ends the run, after `commandTimeout`.
 */
export function measurementRedis(url: string): Redis {
  const redis = new Redis(url, {
    commandTimeout: 10_000,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    lazyConnect: true,
  });
  redis.on('error', () => {});
  return redis;
}

/** HS256 secret of every freshgate instance of a run; the load generator signs with it too. */
export const BENCH_SECRET = 'freshgate-bench-secret-0123456789abcdef';
