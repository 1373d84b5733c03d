import { ConfigError, memoryPinStore, type Pin, type PinUpdate, StoreError } from '@freshgate/core';
import {
  CircuitBreaker,
  checkOptions,
  parseDuration,
  systemClock,
  withTimeout,
} from '@freshgate/core/adapter';
import { decodePin, EXTEND_COMMAND, EXTEND_SCRIPT, extendArguments, pinKey } from './pin-script.js';
import type { RedisClientLike, RedisPinStore, RedisPinStoreOptions } from './types.js';

/** Default prefix of pin keys. */
export const DEFAULT_PIN_KEY_PREFIX = 'freshgate:pin:';
/** Default time allowed per Redis call: a GET takes ~0.1 ms on a LAN, so 50 ms only trips on trouble. */
export const DEFAULT_REDIS_TIMEOUT = '50ms';
/**
 * Default circuit breaker: opens after 3 consecutive failures; probes after a short `open`
 * (a probe costs one request at most `timeout`); `maxOpen` caps the open time so that pins
 * are used again about a second after Redis returns.
 */
export const DEFAULT_BREAKER = { failureThreshold: 3, open: '250ms', maxOpen: '1s' } as const;
/** Default number of pins this process wrote that are also kept in memory (for their TTL). */
export const DEFAULT_LOCAL_PINS = 10_000;

// ioredis statuses in which a command can only queue or fail: failing at once keeps a
// client with an offline queue from piling commands up while Redis is away.
const DISCONNECTED = new Set(['reconnecting', 'close', 'end']);

const OPTIONS = ['prefix', 'timeout', 'circuitBreaker', 'localPins', 'clock', 'onWarning'] as const;

type ExtendCommand = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/**
 * A pin store in Redis for `createEngine` / `createFreshgate` (`pinStore`). Works unchanged on
 * standalone Redis, Sentinel and Redis Cluster (one key per operation, no hash tags).
 *
 * - One key per session, `prefix` + a SHA-256 of the session key: no raw session id is written.
 * - `extend` is one Lua script, registered once per client with `defineCommand`: it keeps the
 *   highest LSN (compared exactly, all 64 bits), sets or keeps the sticky node and restarts
 *   the TTL, atomically.
 * - `get` is a single GET, so `enableAutoPipelining` batches concurrent requests.
 * - Every call is bounded by `timeout` and goes through a circuit breaker: while Redis is down,
 *   slow or refusing, calls fail fast with a `StoreError` and the engine applies `onStoreError`.
 *   The breaker probes again after `circuitBreaker.open`, so the store recovers by itself.
 *
 * Give it a client of its own, configured to fail fast (see the README): with ioredis defaults
 * a command against a dead Redis waits ~10 s in the offline queue. The store stays bounded
 * either way, but a dedicated client keeps pin traffic out of the application's queues.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { redisPinStore } from '@freshgate/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL!, {
 *   enableOfflineQueue: false,
 *   commandTimeout: 50,
 *   maxRetriesPerRequest: 0,
 *   enableAutoPipelining: true,
 * });
 * const freshgate = await createFreshgate({ primary, replicas, secret, pinStore: redisPinStore(redis) });
 * ```
 */
export function redisPinStore(
  redis: RedisClientLike,
  options: RedisPinStoreOptions = {},
): RedisPinStore {
  if (
    typeof redis?.get !== 'function' ||
    typeof (redis as Partial<RedisClientLike>).defineCommand !== 'function'
  ) {
    throw new ConfigError(
      'redis',
      'expected an ioredis client (new Redis(...) or new Redis.Cluster(...)) with get and defineCommand',
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new ConfigError('options', 'expected an object, e.g. { prefix: "app:pin:" }');
  }
  checkOptions(options, OPTIONS, 'options');
  const prefix = options.prefix ?? DEFAULT_PIN_KEY_PREFIX;
  if (typeof prefix !== 'string' || prefix === '') {
    throw new ConfigError('prefix', 'expected a non-empty string, e.g. "freshgate:pin:"');
  }
  if (prefix.includes('{') || prefix.includes('}')) {
    // A hash tag in the prefix would put every session in one cluster slot.
    throw new ConfigError('prefix', 'must not contain "{" or "}": pins are spread over slots');
  }
  const timeoutMs = parseDuration(options.timeout ?? DEFAULT_REDIS_TIMEOUT, 'timeout');
  if (timeoutMs < 1) throw new ConfigError('timeout', 'must be at least 1ms, e.g. "50ms"');
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function')
    throw new ConfigError('clock', 'expected { now(): number }');
  const localPins = options.localPins ?? DEFAULT_LOCAL_PINS;
  if (localPins !== false && (!Number.isInteger(localPins) || localPins < 0)) {
    throw new ConfigError(
      'localPins',
      `expected an integer >= 0 (0 or false: off), got ${String(localPins)}`,
    );
  }
  // Pins this process wrote, for their TTL: a pin that Redis lost (restart without
  // persistence) or never got (a failed extend) still holds for the sessions served here.
  const local =
    localPins === false || localPins === 0
      ? null
      : memoryPinStore({ maxEntries: localPins, clock });
  const breaker = new CircuitBreaker({
    defaults: DEFAULT_BREAKER,
    settings: options.circuitBreaker,
    path: 'circuitBreaker.',
    clock,
  });
  const warn =
    options.onWarning ?? ((message: string) => process.emitWarning(message, 'FreshgateWarning'));
  if (typeof warn !== 'function')
    throw new ConfigError('onWarning', 'expected a function (message) => void');
  let policyChecked = false;

  /**
   * Warns once when Redis may evict live pins. Run after the first answered call (the client is
   * connected then: it may have no offline queue); a server that refuses CONFIG (managed Redis)
   * is not checked.
   */
  function checkPolicy(): void {
    if (policyChecked) return;
    policyChecked = true;
    if (typeof redis.config !== 'function') return;
    redis.config('GET', 'maxmemory-policy').then(
      (reply) => {
        const policy = maxmemoryPolicy(reply);
        if (policy?.startsWith('allkeys-')) {
          try {
            warn(
              `freshgate: Redis maxmemory-policy is ${policy}: under memory pressure Redis evicts live pins (sessions then read the past). Use volatile-ttl, volatile-lru or noeviction (pins always have a TTL), or a Redis of their own.`,
            );
          } catch {
            // A throwing listener must not break the store.
          }
        }
      },
      () => {},
    );
  }

  // Registered once per client, however many stores share it.
  const commands = redis as unknown as Record<string, ExtendCommand | undefined>;
  if (typeof commands[EXTEND_COMMAND] !== 'function') {
    redis.defineCommand(EXTEND_COMMAND, { lua: EXTEND_SCRIPT, numberOfKeys: 1 });
  }
  const extendCommand = (key: string, args: (string | number)[]) =>
    (commands[EXTEND_COMMAND] as ExtendCommand).call(redis, key, ...args);

  function call<T>(operation: 'get' | 'extend', run: () => Promise<T>): Promise<T> {
    if (!breaker.allow()) {
      return Promise.reject(
        new StoreError(operation, {
          message: `Pin store ${operation} refused: circuit open after Redis failures`,
        }),
      );
    }
    const status = redis.status;
    if (status !== undefined && DISCONNECTED.has(status)) {
      breaker.failure();
      return Promise.reject(
        new StoreError(operation, {
          message: `Pin store ${operation} failed: Redis client is ${status}`,
        }),
      );
    }
    let pending: Promise<T>;
    try {
      pending = run();
    } catch (error) {
      pending = Promise.reject(error);
    }
    let timedOut: StoreError | undefined;
    const timeout = () => {
      timedOut = new StoreError(operation, {
        message: `Pin store ${operation} timed out after ${timeoutMs}ms`,
      });
      return timedOut;
    };
    // A reply that comes after the timeout is dropped: the timeout already counted as a failure.
    return withTimeout(pending, timeoutMs, timeout).then(
      (value) => {
        breaker.success();
        checkPolicy();
        return value;
      },
      (error: unknown) => {
        breaker.failure();
        if (error !== undefined && error === timedOut) throw error;
        throw new StoreError(operation, { cause: error ?? new Error('rejected without a reason') });
      },
    );
  }

  return {
    get circuit() {
      return breaker.state;
    },
    async get(key: string): Promise<Pin | undefined> {
      const value = await call('get', () => redis.get(pinKey(prefix, key)));
      const pin = value === null ? undefined : decodePin(value, clock.now());
      if (pin === null) {
        // Redis answered, so the breaker stays closed; but a value this store did not write
        // is not evidence that the session has no pin.
        throw new StoreError('get', {
          message: `Pin store get found a value it did not write under prefix "${prefix}"`,
        });
      }
      const mine = await local?.get(key);
      return mine === undefined ? pin : merge(pin, mine);
    },
    async extend(key: string, update: PinUpdate): Promise<void> {
      let args: (string | number)[];
      try {
        args = extendArguments(update, clock.now());
      } catch (error) {
        throw new StoreError('extend', { cause: error });
      }
      await local?.extend(key, update);
      await call('extend', () => extendCommand(pinKey(prefix, key), args));
    },
  };
}

/** The policy in a `CONFIG GET maxmemory-policy` reply (`['maxmemory-policy', 'allkeys-lru']`). */
function maxmemoryPolicy(reply: unknown): string | undefined {
  if (Array.isArray(reply) && typeof reply[1] === 'string') return reply[1];
  if (reply !== null && typeof reply === 'object') {
    const value = (reply as Record<string, unknown>)['maxmemory-policy'];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/** Redis is shared by every process and wins on the node; the LSN is the higher of the two. */
function merge(shared: Pin | undefined, mine: Pin): Pin {
  if (shared === undefined) return mine;
  const lsn =
    shared.lsn === null || (mine.lsn !== null && mine.lsn > shared.lsn) ? mine.lsn : shared.lsn;
  return { lsn, node: shared.node, ttlMs: Math.max(shared.ttlMs, mine.ttlMs) };
}
