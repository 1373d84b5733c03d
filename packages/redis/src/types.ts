import type { CircuitState, Clock, Duration, PinStore } from '@freshgate/core';

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
}
