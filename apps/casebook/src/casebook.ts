import { memoryPinStore, type PinStore } from '@freshgate/core';
import { createFreshgate, type Freshgate } from '@freshgate/pg';
import { type RedisPinStore, redisPinStore } from '@freshgate/redis';
import { Redis } from 'ioredis';
import type { CasebookConfig } from './config.js';
import { Counters } from './counters.js';
import { Lab } from './lab.js';
import { LagHistory } from './lag-history.js';
import { type CasebookMetrics, prometheusMetrics } from './metrics.js';
import type { CasebookServices } from './routes.js';
import { createSchema } from './schema.js';

/** Everything the HTTP layer needs, independent of the framework. */
export interface Casebook {
  config: CasebookConfig;
  freshgate: Freshgate;
  services: CasebookServices;
  /** Present with `CASEBOOK_METRICS=1`: freshgate's metrics for `/metrics`. */
  metrics: CasebookMetrics | undefined;
  close(): Promise<void>;
}

/**
 * Connects to the databases (and Redis when configured), creates the schema, starts the
 * replica monitor.
 */
export async function openCasebook(config: CasebookConfig): Promise<Casebook> {
  const counters = new Counters();
  const metrics = config.metrics ? prometheusMetrics() : undefined;
  let redis: Redis | undefined;
  let pinStore: PinStore;
  let pins: RedisPinStore | undefined;
  if (config.redisUrl) {
    // A pin store client must fail fast: no offline queue; the store bounds each call itself.
    redis = new Redis(config.redisUrl, {
      enableOfflineQueue: false,
      commandTimeout: 1_000,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
      lazyConnect: false,
    });
    redis.on('error', () => {});
    pins = redisPinStore(redis, { meter: metrics?.meter('@freshgate/redis') });
    pinStore = pins;
  } else {
    pinStore = memoryPinStore({ meter: metrics?.meter('@freshgate/core') });
  }
  const freshgate = await createFreshgate({
    primary: config.primaryUrl,
    replicas: Object.fromEntries(config.replicas),
    secret: config.secret,
    pinStore,
    cookie: true,
    telemetry: { meter: metrics?.meter('@freshgate/core'), onDecision: counters.onDecision },
    // The synthetic read-after-write probe, shown beside the LSN lag on the dashboard.
    probe: { interval: '1s' },
    // The dashboard charts every replica's lag from start-up, read or no read: no rest.
    monitor: { idle: false },
  });
  await createSchema(freshgate.primary);
  await freshgate.start();
  const lab = config.lab ? new Lab(config.primaryUrl, config.replicas) : undefined;
  const lagHistory = new LagHistory(() => freshgate.status(), lab);
  lagHistory.start();
  const services: CasebookServices = {
    lab,
    lagHistory,
    track: (route, run) => counters.within(route, run),
    status: () => ({
      ...freshgate.status(),
      counters,
      lab: config.lab,
      framework: config.framework,
      pinStore: config.redisUrl ? 'redis' : 'memory',
      pinStoreStats: pins?.stats() ?? null,
    }),
  };
  return {
    config,
    freshgate,
    services,
    metrics,
    async close() {
      lagHistory.stop();
      await freshgate.close();
      await pins?.close();
      redis?.disconnect();
      await metrics?.close();
    },
  };
}
