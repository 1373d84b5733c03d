import type { CircuitState, Clock, Duration, PinStore, PinStoreVouch } from '@freshgate/core';
import type { Meter } from '@opentelemetry/api';

/**
 * The part of an ioredis client (`Redis` for standalone and Sentinel, `Cluster` for Redis
 * Cluster) that the pin store uses. The client is the caller's: its connection settings,
 * `keyPrefix`, TLS and auth stay under the caller's control.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const client: RedisClientLike = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false });
 * ```
 */
export interface RedisClientLike {
  get(key: string): Promise<string | null>;
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
  /** ioredis connection status; while it says the client is disconnected, calls fail at once. */
  readonly status?: string;
  /** `CONFIG GET maxmemory-policy`, checked once; a client or server without it is not checked. */
  config?(subcommand: 'GET', parameter: string): Promise<unknown>;
  /** Reads the store's generation beside each pin; without it only the heartbeat checks it. */
  hget?(key: string, field: string): Promise<string | null>;
  /** Removes this instance's heartbeat on `close()`. */
  hdel?(key: string, field: string): Promise<unknown>;
  /** `INFO`, for the server's run id, replication id and eviction count (standalone only). */
  info?(): Promise<string>;
  /** `true` on an ioredis `Cluster`, whose INFO answers for one node only. */
  readonly isCluster?: boolean;
}

/** Circuit breaker settings of {@link RedisPinStoreOptions.circuitBreaker}. */
export interface RedisPinStoreBreakerOptions {
  /** Consecutive failures (errors or timeouts) that open the circuit. Default 3. */
  failureThreshold?: number;
  /** Time the circuit stays open before one call probes Redis again. Default `'250ms'`. */
  open?: Duration;
  /** Cap of the open time, which doubles after each failed probe. Default `'1s'`. */
  maxOpen?: Duration;
  /** Called on every state change (`closed` → `open` → `half-open` → …); a throwing listener is ignored. */
  onChange?: (from: CircuitState, to: CircuitState) => void;
}

/** Options of `redisPinStore`. */
export interface RedisPinStoreOptions {
  /**
   * Prefix of every pin key; the rest of the key is a hash of the session key. Applied after
   * the client's own `keyPrefix`. Default `DEFAULT_PIN_KEY_PREFIX` (`'freshgate:pin:'`).
   */
  prefix?: string;
  /**
   * Time the store allows one Redis call before it counts a failure and rejects, whatever
   * the client's own `commandTimeout`. Default `DEFAULT_REDIS_TIMEOUT` (`'50ms'`).
   */
  timeout?: Duration;
  /** Circuit breaker in front of Redis. Defaults: 3 failures, open 250 ms, at most 1 s. */
  circuitBreaker?: RedisPinStoreBreakerOptions;
  /**
   * Pins this process wrote that it also keeps in memory for their TTL (bounded, least
   * recently written dropped first). A read takes the higher LSN of Redis and memory, so
   * read-your-writes for sessions served by this process survives a Redis restart without
   * persistence and an extend that failed while Redis was away. `0` or `false` turns it off.
   * Default `DEFAULT_LOCAL_PINS` (10 000).
   */
  localPins?: number | false;
  /** Source of time for the breaker and for pin expiry estimates. Default `systemClock`. */
  clock?: Clock;
  /**
   * Receives configuration warnings, such as a Redis `maxmemory-policy` of `allkeys-*` (under
   * memory pressure Redis would then evict live pins, and sessions would read the past).
   * Default: `process.emitWarning`.
   */
  onWarning?: (message: string) => void;
  /**
   * Several app instances share the pins: each reports a heartbeat to Redis, and checks the
   * store's generation, every `heartbeat`. An instance whose heartbeat is older than `overdue`
   * may hold writes it could not pin: the others stop trusting a missing pin until it reports
   * again (it writes back its failed pins first), and, when other instances report to the
   * same store, a write whose pin failed holds its answer `overdue + heartbeat` so that they
   * notice first. `false` turns reporting off
   * (one instance only). Default `DEFAULT_INSTANCES` (`{ heartbeat: '100ms', overdue: '1s' }`).
   */
  instances?: { heartbeat?: Duration; overdue?: Duration } | false;
  /**
   * How long absence stays distrusted after Redis lost state, or after an instance's
   * heartbeat stopped: set it to the engine's `pinTtl` (pins written before are gone by then).
   * Default `DEFAULT_DISTRUST_FOR` (`'5s'`, the engine's default `pinTtl`).
   */
  distrustFor?: Duration;
  /**
   * Pins that failed to reach Redis kept to be written back (max-merged, with the expiry of
   * the original write) when it answers again; the oldest are dropped past this number, and
   * counted in `freshgate.store.write_back_dropped`. `0`: off. Default `DEFAULT_WRITE_BACK` (10 000).
   */
  writeBack?: number;
  /** Meter of the store's metrics. Default: `metrics.getMeter('@freshgate/redis')`. */
  meter?: Meter;
}

/** What {@link RedisPinStore.stats} reports, e.g. for a dashboard. */
export interface RedisPinStoreStats {
  /** Grows each time Redis was found to have lost state. */
  readonly epoch: number;
  /** Epoch changes seen by this store (restart, failover, flush, evictions). */
  readonly epochChanges: number;
  /** Whether a missing pin is trusted right now (no recent loss, every instance reporting). */
  readonly vouched: boolean;
  /** Failed pins waiting to be written back. */
  readonly writeBackPending: number;
  /** Failed pins written back so far. */
  readonly writtenBack: number;
  /** Failed pins dropped before they could be written back. */
  readonly writeBackDropped: number;
}

/**
 * A {@link PinStore} backed by Redis, with its circuit breaker's state visible for health
 * checks.
 *
 * @example
 * ```ts
 * const pins = redisPinStore(redis);
 * app.get('/healthz', (_req, res) => res.json({ pinStore: pins.circuit }));
 * ```
 */
export interface RedisPinStore extends PinStore {
  /** `closed` while Redis answers; `open` while calls are refused without trying. */
  readonly circuit: CircuitState;
  /** The store's `timeout` in ms: it bounds each call itself, so the engine adds no timer. */
  readonly timeoutMs: number;
  vouch(): PinStoreVouch;
  /** Epochs, trust and write-back counts of this store. */
  stats(): RedisPinStoreStats;
  /** Stops the heartbeat and removes this instance from the store's list. */
  close(): Promise<void>;
}
