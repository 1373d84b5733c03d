import type { TelemetryOptions } from '@freshgate/core';
import { Redis, Cluster as RedisCluster, type RedisOptions } from 'ioredis';

/**
 * The client settings the README recommends for a pin store: no offline queue, a command
 * timeout as a backstop only (the store bounds each call by its own `timeout`), no retries of
 * a failed command, auto-pipelining, and reconnect attempts capped at 200 ms apart so that a
 * returning Redis is found quickly.
 */
export const PIN_CLIENT_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  commandTimeout: 1_000,
  maxRetriesPerRequest: 0,
  enableAutoPipelining: true,
  retryStrategy: (times) => Math.min(times * 50, 200),
};

/** A connected standalone client (the store needs `ready`: it has no offline queue). */
export async function connectRedis(url: string, overrides: RedisOptions = {}): Promise<Redis> {
  const client = new Redis(url, { ...PIN_CLIENT_OPTIONS, lazyConnect: true, ...overrides });
  // Errors while Redis is down are expected in these tests; the store reports them.
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A connected Redis Cluster client with the same per-node settings. */
export async function connectRedisCluster(
  startupNodes: { host: string; port: number }[],
  overrides: RedisOptions = {},
): Promise<RedisCluster> {
  const client = new RedisCluster(startupNodes, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    redisOptions: { ...PIN_CLIENT_OPTIONS, ...overrides },
  });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('end', () => reject(new Error('Redis Cluster client ended before ready')));
  });
  return client;
}

/** A meter that counts what the engine adds to each counter (`store.failures`, `fallbacks`…). */
export function countingMeter(): {
  meter: NonNullable<TelemetryOptions['meter']>;
  total(name: string): number;
} {
  const totals = new Map<string, number>();
  const instrument = (name: string) => ({
    add: (value: number) => totals.set(name, (totals.get(name) ?? 0) + value),
    record: () => {},
  });
  const meter = {
    createCounter: instrument,
    createHistogram: instrument,
    createUpDownCounter: instrument,
  };
  return {
    meter: meter as unknown as NonNullable<TelemetryOptions['meter']>,
    total: (name) => totals.get(name) ?? 0,
  };
}

/** The `p`-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A random LSN over the full 64 bits (so values cross 2^53). */
export function randomLsn(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}
