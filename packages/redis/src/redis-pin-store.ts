import { randomBytes } from 'node:crypto';
import {
  ConfigError,
  type Pin,
  type PinStoreVouch,
  type PinUpdate,
  StoreError,
} from '@freshgate/core';
import {
  CircuitBreaker,
  checkOptions,
  memoryPins,
  parseDuration,
  settleWithin,
  systemClock,
  withTimeout,
} from '@freshgate/core/adapter';
import { metrics } from '@opentelemetry/api';
import {
  decodePin,
  EXTEND_COMMAND,
  EXTEND_SCRIPT,
  extendArguments,
  META_COMMAND,
  META_SCRIPT,
  metaKey,
  pinKey,
  READ_COMMAND,
  READ_SCRIPT,
} from './pin-script.js';
import type {
  RedisClientLike,
  RedisPinStore,
  RedisPinStoreOptions,
  RedisPinStoreStats,
} from './types.js';

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
/**
 * Default instance reporting: a heartbeat (and generation check) every 100 ms; an instance
 * whose heartbeat is older than 1 s is taken as cut off from Redis, and others stop trusting
 * a missing pin until it is back (or, gone for good, for `distrustFor` after).
 */
export const DEFAULT_INSTANCES = { heartbeat: '100ms', overdue: '1s' } as const;
/** Default time absence is distrusted after a loss: the engine's default `pinTtl`. */
export const DEFAULT_DISTRUST_FOR = '5s';
/** Default number of pins that failed to reach Redis kept to be written back when it returns. */
export const DEFAULT_WRITE_BACK = 10_000;

/** Counter: times the store found Redis lost state, by `freshgate.store.epoch_cause`. */
export const METRIC_STORE_EPOCH_CHANGES = 'freshgate.store.epoch_changes';
/** Counter: pins written back to Redis after a failed write, once Redis answered again. */
export const METRIC_PINS_WRITTEN_BACK = 'freshgate.store.pins_written_back';
/** Counter: failed pins dropped from the write-back buffer (full, or expired first). */
export const METRIC_WRITE_BACK_DROPPED = 'freshgate.store.write_back_dropped';
/** Gauge: 1 while this store vouches that a missing pin means no write, else 0. */
export const METRIC_STORE_VOUCHED = 'freshgate.store.vouched';
/**
 * Attribute of {@link METRIC_STORE_EPOCH_CHANGES}: `generation` (the meta hash lost or
 * replaced), `server` (new run id or replication id), `evictions`, or `restart-aof` (a restart
 * that kept its data: a short window, not a new epoch).
 */
export const ATTR_EPOCH_CAUSE = 'freshgate.store.epoch_cause';

/** Values of {@link ATTR_EPOCH_CAUSE}. */
const EPOCH_CAUSES = ['generation', 'server', 'evictions', 'restart-aof'] as const;
type EpochCause = (typeof EPOCH_CAUSES)[number];
/**
 * Distrust after a restart with AOF on that kept the data (`appendfsync everysec` loses at most
 * about the last second of writes; twice that for a slow disk).
 */
export const AOF_RESTART_WINDOW_MS = 2_000;
// How often failed pins are written back when instances do not report (`instances: false`).
const WRITE_BACK_EVERY_MS = 100;
// How often (in heartbeats) the server's identity and eviction count are read with INFO.
const INFO_EVERY = 10;

// ioredis statuses in which a command can only queue or fail: failing at once keeps a
// client with an offline queue from piling commands up while Redis is away.
const DISCONNECTED = new Set(['reconnecting', 'close', 'end']);

const OPTIONS = [
  'prefix',
  'timeout',
  'circuitBreaker',
  'localPins',
  'clock',
  'onWarning',
  'instances',
  'distrustFor',
  'writeBack',
  'meter',
] as const;

/** A command registered with `defineCommand`: its key(s), then its arguments. */
type ScriptCommand = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/**
 * A pin store in Redis for `createEngine` / `createFreshgate` (`pinStore`). Works unchanged on
 * standalone Redis, Sentinel and Redis Cluster (one key per operation, no hash tags).
 *
 * - One key per session, `prefix` + a SHA-256 of the session key: no raw session id is written.
 * - `extend` is one Lua script, registered once per client with `defineCommand`: it keeps the
 *   highest LSN (compared exactly, all 64 bits), sets or keeps the sticky node and restarts
 *   the TTL, atomically.
 * - `get` is one command: a script that reads the pin and, after it, the store's generation
 *   (on Redis Cluster a GET and an HGET, the keys being in different slots).
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
 *   commandTimeout: 1_000, // a backstop: the store bounds each call by its own `timeout`
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
  // Read synchronously, in the reaction to Redis's answer: no promise of its own.
  const local =
    localPins === false || localPins === 0 ? null : memoryPins({ maxEntries: localPins, clock });
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
  const instances = options.instances ?? DEFAULT_INSTANCES;
  if (instances !== false && (instances === null || typeof instances !== 'object')) {
    throw new ConfigError('instances', 'expected { heartbeat, overdue } or false');
  }
  if (instances !== false)
    checkOptions(instances, ['heartbeat', 'overdue'], 'instances', 'instances.');
  const heartbeatMs =
    instances === false
      ? 0
      : parseDuration(instances.heartbeat ?? DEFAULT_INSTANCES.heartbeat, 'instances.heartbeat');
  const overdueMs =
    instances === false
      ? 0
      : parseDuration(instances.overdue ?? DEFAULT_INSTANCES.overdue, 'instances.overdue');
  if (instances !== false && (heartbeatMs < 1 || overdueMs < 2 * heartbeatMs)) {
    throw new ConfigError(
      'instances',
      'heartbeat must be at least 1ms and overdue at least twice the heartbeat, e.g. { heartbeat: "100ms", overdue: "1s" }',
    );
  }
  const distrustMs = parseDuration(options.distrustFor ?? DEFAULT_DISTRUST_FOR, 'distrustFor');
  const writeBackMax = options.writeBack ?? DEFAULT_WRITE_BACK;
  if (!Number.isInteger(writeBackMax) || writeBackMax < 0) {
    throw new ConfigError('writeBack', `expected an integer >= 0, got ${String(writeBackMax)}`);
  }
  const meter = options.meter ?? metrics.getMeter('@freshgate/redis');
  const epochChanges = meter.createCounter(METRIC_STORE_EPOCH_CHANGES, {
    description: 'Times the pin store found Redis lost state (restart, failover, flush, eviction)',
  });
  const writtenBack = meter.createCounter(METRIC_PINS_WRITTEN_BACK, {
    description: 'Pins that failed to reach Redis and were written back once it answered',
  });
  const writeBackDropped = meter.createCounter(METRIC_WRITE_BACK_DROPPED, {
    description: 'Failed pins dropped before they could be written back (buffer full or expired)',
  });
  // Exported from the start at 0 (each cause too): alerts and dashboards see the series
  // before the first event.
  for (const cause of EPOCH_CAUSES) epochChanges.add(0, { [ATTR_EPOCH_CAUSE]: cause });
  writtenBack.add(0);
  writeBackDropped.add(0);

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

  // A script command, registered once per client however many stores share it.
  const commands = redis as unknown as Record<string, ScriptCommand | undefined>;
  const script = (name: string, lua: string, numberOfKeys: number): ScriptCommand => {
    if (typeof commands[name] !== 'function') redis.defineCommand(name, { lua, numberOfKeys });
    return (commands[name] as ScriptCommand).bind(redis);
  };
  const extendCommand = script(EXTEND_COMMAND, EXTEND_SCRIPT, 1);
  const metaScript = instances === false ? null : script(META_COMMAND, META_SCRIPT, 1);
  const meta = metaKey(prefix);
  const hget = typeof redis.hget === 'function' ? redis.hget.bind(redis) : null;
  // A pin read: its value and the store's generation (`undefined` when not tracked). One
  // script on a single server; a GET and an HGET side by side on Redis Cluster, whose slots
  // keep the two keys apart.
  let read: (key: string) => Promise<[string | null, string | null | undefined]>;
  if (instances === false || hget === null) {
    read = (key) => redis.get(key).then((value) => [value, undefined]);
  } else if (redis.isCluster === true) {
    read = (key) => Promise.all([redis.get(key), hget(meta, 'gen')]);
  } else {
    const readScript = script(READ_COMMAND, READ_SCRIPT, 2);
    read = (key) => readScript(key, meta) as Promise<[string | null, string | null]>;
  }

  // What the store knows about Redis's state. `generation` is the meta hash's `gen` as last
  // seen (`undefined`: never, `null`: found missing); a change of it, of the server's run id
  // or replication id, or new evictions, is a new epoch: pins may be gone.
  const id = randomBytes(9).toString('base64url');
  let generation: string | null | undefined;
  let server: { runId: string; replId: string } | undefined;
  let quietUntil = Number.NEGATIVE_INFINITY;
  let generationAtInfo: string | null | undefined;
  let evicted: number | undefined;
  let epoch = 0;
  let epochAt = Number.NEGATIVE_INFINITY;
  let epochCount = 0;
  let writtenBackCount = 0;
  let droppedCount = 0;
  // Heartbeats of the other instances (id → time), and when this one last reported.
  let peers = new Map<string, number>();
  let reportedAt = Number.NEGATIVE_INFINITY;
  let ticks = 0;
  let ticking = false;
  let closed = false;
  // Pins whose write failed, to write back (max-merged, original expiry) when Redis answers.
  const missed = new Map<
    string,
    { lsn: bigint | null; node: string | null | undefined; expiresAt: number }
  >();
  // Start times of extends in flight: a heartbeat claims only what was written before it.
  const pending = new Set<{ at: number }>();

  function newEpoch(cause: EpochCause): void {
    // Every pin written before may be gone: the engine distrusts absence for its pinTtl.
    epoch++;
    epochCount++;
    epochAt = clock.now();
    epochChanges.add(1, { [ATTR_EPOCH_CAUSE]: cause });
  }

  function observeGeneration(gen: string | null): void {
    if (gen === generation) return;
    const first = generation === undefined;
    const adopting = generation === null && gen !== null;
    generation = gen;
    // A fresh generation after a missing one is the same loss, already counted.
    if (!first && !adopting) newEpoch('generation');
  }

  function vouch(): PinStoreVouch {
    if (instances === false) return { epoch, complete: true };
    const now = clock.now();
    let complete =
      now - reportedAt <= overdueMs && now - epochAt >= distrustMs && now >= quietUntil;
    for (const at of peers.values()) {
      if (now - at > overdueMs && now - at <= overdueMs + distrustMs) complete = false;
    }
    return { epoch, complete };
  }

  function remember(key: string, update: PinUpdate): void {
    if (writeBackMax === 0) return;
    const expiresAt = clock.now() + update.ttlMs;
    const before = missed.get(key);
    missed.delete(key);
    missed.set(key, {
      lsn:
        before?.lsn == null || (update.lsn !== null && update.lsn > before.lsn)
          ? update.lsn
          : before.lsn,
      node: update.node === undefined ? before?.node : update.node,
      expiresAt: Math.max(expiresAt, before?.expiresAt ?? 0),
    });
    if (missed.size > writeBackMax) {
      const oldest = missed.keys().next().value as string;
      missed.delete(oldest);
      droppedCount++;
      writeBackDropped.add(1);
    }
    if (timer === null && !closed) arm(WRITE_BACK_EVERY_MS);
  }

  /** Writes back what failed, oldest first; throws (keeping the rest) when Redis fails again. */
  async function writeBack(): Promise<void> {
    for (const [key, entry] of [...missed]) {
      const now = clock.now();
      const ttlMs = entry.expiresAt - now;
      if (ttlMs < 1) {
        missed.delete(key);
        droppedCount++;
        writeBackDropped.add(1);
        continue;
      }
      const args = extendArguments({ lsn: entry.lsn, node: entry.node, ttlMs }, now);
      await call('extend', () => extendCommand(pinKey(prefix, key), ...args), ignore);
      // A newer failure of the same key replaced the entry: it is written back next time.
      if (missed.get(key) === entry) missed.delete(key);
      writtenBackCount++;
      writtenBack.add(1);
    }
  }

  /**
   * One heartbeat: write back what failed, then report this instance as having no pin
   * missing from Redis up to the heartbeat's time, and read the generation and the others'
   * heartbeats. Every few beats, the server's identity and eviction count too.
   */
  async function beat(): Promise<void> {
    if (ticking || closed) return;
    ticking = true;
    const startedAt = clock.now();
    try {
      if (missed.size > 0) await writeBack();
      // Without instance reporting, the beat only writes back, and rests once all is back.
      if (metaScript === null) {
        if (missed.size === 0 && timer !== null) {
          clearInterval(timer);
          timer = null;
        }
        return;
      }
      let at = startedAt;
      for (const p of pending) at = Math.min(at, p.at);
      const reply = await report(() =>
        metaScript(
          meta,
          `${randomBytes(9).toString('base64url')}`,
          missed.size === 0 ? id : '',
          at,
          startedAt - overdueMs - distrustMs,
        ),
      );
      const fields = Array.isArray(reply) ? (reply as unknown[]) : [];
      const seen = new Map<string, number>();
      let gen: string | null = null;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = String(fields[i]);
        if (name === 'gen') gen = String(fields[i + 1]);
        else if (name.startsWith('i:') && name !== `i:${id}`) {
          seen.set(name.slice(2), Number(fields[i + 1]));
        }
      }
      observeGeneration(gen);
      peers = seen;
      if (missed.size === 0) reportedAt = at;
      if (ticks++ % INFO_EVERY === 0) await checkServer();
    } catch {
      // Counted by the breaker; the next beat tries again.
    } finally {
      ticking = false;
    }
  }

  /**
   * A new server (restart, failover) or new evictions: pins may be gone. Standalone only. A
   * restart (not a promoted replica: its `master_replid2` is not the old replication id) that
   * kept the generation, with AOF on and `appendfsync everysec` or `always`, lost at most about
   * the last second of writes: a short window ({@link AOF_RESTART_WINDOW_MS}) instead of a new
   * epoch.
   */
  async function checkServer(): Promise<void> {
    if (typeof redis.info !== 'function' || redis.isCluster === true) return;
    const info = String(await report(() => (redis.info as () => Promise<string>)()));
    const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
    const now = { runId: field('run_id') ?? '', replId: field('master_replid') ?? '' };
    const evictedNow = Number(field('evicted_keys') ?? 0);
    const before = server;
    server = now;
    if (before !== undefined && (now.runId !== before.runId || now.replId !== before.replId)) {
      const restart = now.runId !== before.runId && field('master_replid2') !== before.replId;
      const kept =
        restart &&
        field('aof_enabled') === '1' &&
        generation === generationAtInfo &&
        (await fsyncPolicy()) !== 'no';
      if (kept) {
        quietUntil = clock.now() + AOF_RESTART_WINDOW_MS;
        epochCount++;
        epochChanges.add(1, { [ATTR_EPOCH_CAUSE]: 'restart-aof' });
      } else newEpoch('server');
    } else if (evicted !== undefined && evictedNow > evicted) newEpoch('evictions');
    evicted = evictedNow;
    generationAtInfo = generation;
  }

  /** `appendfsync` (`always`, `everysec`, `no`), or `'no'` when the server will not say. */
  async function fsyncPolicy(): Promise<string> {
    if (typeof redis.config !== 'function') return 'no';
    try {
      const reply = await report(() =>
        (redis.config as NonNullable<RedisClientLike['config']>)('GET', 'appendfsync'),
      );
      return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : 'no';
    } catch {
      return 'no';
    }
  }

  // With instance reports, a heartbeat every `heartbeat`. Without, a beat only writes back:
  // its timer runs only while failed pins wait, so that an idle store is never woken.
  let timer: ReturnType<typeof setInterval> | null = null;
  function arm(everyMs: number): void {
    timer = setInterval(() => void beat(), everyMs);
    timer.unref?.();
  }
  if (instances !== false) {
    arm(heartbeatMs);
    meter
      .createObservableGauge(METRIC_STORE_VOUCHED, {
        description: '1 while the pin store vouches that a missing pin means no write',
      })
      .addCallback((result) => result.observe(vouch().complete ? 1 : 0));
    void beat();
  }

  /**
   * A heartbeat's call: bounded like the others, but outside the circuit breaker, so that
   * background traffic neither opens the circuit for requests nor closes it for them.
   */
  function report<T>(run: () => Promise<T>): Promise<T> {
    const status = redis.status;
    if (status !== undefined && DISCONNECTED.has(status)) {
      return Promise.reject(new StoreError('get', { message: `Redis client is ${status}` }));
    }
    let pending: Promise<T>;
    try {
      pending = run();
    } catch (error) {
      pending = Promise.reject(error);
    }
    return withTimeout(
      pending,
      timeoutMs,
      () =>
        new StoreError('get', { message: `Pin store heartbeat timed out after ${timeoutMs}ms` }),
    );
  }

  /**
   * A request's call: bounded by `timeout`, through the circuit breaker. `use` makes the
   * caller's value of the reply in the same reaction (one promise per call, not one per layer).
   */
  function call<T, R>(
    operation: 'get' | 'extend',
    run: () => Promise<T>,
    use: (reply: T) => R,
  ): Promise<R> {
    const sentAt = clock.now();
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
    // A reply that comes after the timeout is dropped: the timeout already counted as a failure.
    return settleWithin(
      pending,
      timeoutMs,
      () =>
        new StoreError(operation, {
          message: `Pin store ${operation} timed out after ${timeoutMs}ms`,
        }),
      (reply) => {
        breaker.success();
        checkPolicy();
        return use(reply);
      },
      (error, timedOut) => {
        // Calls in flight together fail together (a stall of this process times them all
        // out at once): the breaker counts them as one failure.
        breaker.failure(sentAt);
        if (timedOut) throw error;
        throw new StoreError(operation, { cause: error ?? new Error('rejected without a reason') });
      },
    );
  }

  return {
    get circuit() {
      return breaker.state;
    },
    timeoutMs,
    get unpinnedHoldMs() {
      // A failed write waits until the others must see this instance's heartbeat as overdue.
      // With no other instance reporting to this store, nobody else can be asked about it.
      return instances === false || peers.size === 0 ? 0 : overdueMs + heartbeatMs;
    },
    vouch,
    stats(): RedisPinStoreStats {
      return {
        epoch,
        epochChanges: epochCount,
        vouched: vouch().complete,
        writeBackPending: missed.size,
        writtenBack: writtenBackCount,
        writeBackDropped: droppedCount,
      };
    },
    async close(): Promise<void> {
      closed = true;
      if (timer !== null) clearInterval(timer);
      // Leaving on purpose: the others need not wait for this instance's heartbeat.
      if (instances !== false && missed.size === 0 && typeof redis.hdel === 'function') {
        await call(
          'extend',
          () => (redis.hdel as (k: string, f: string) => Promise<unknown>)(meta, `i:${id}`),
          ignore,
        ).catch(() => {});
      }
    },
    get(key: string): Promise<Pin | undefined> {
      // The generation is read with the pin, after it: when it is still the one known, the pin
      // was read from the store that holds this instance's earlier pins.
      return call(
        'get',
        () => read(pinKey(prefix, key)),
        ([value, gen]) => {
          if (gen !== undefined) observeGeneration(gen);
          const pin = value === null ? undefined : decodePin(value, clock.now());
          if (pin === null) {
            // Redis answered, so the breaker stays closed; but a value this store did not write
            // is not evidence that the session has no pin.
            throw new StoreError('get', {
              message: `Pin store get found a value it did not write under prefix "${prefix}"`,
            });
          }
          const mine = local?.get(key);
          return mine === undefined ? pin : merge(pin, mine);
        },
      );
    },
    async extend(key: string, update: PinUpdate): Promise<void> {
      let args: (string | number)[];
      try {
        args = extendArguments(update, clock.now());
      } catch (error) {
        throw new StoreError('extend', { cause: error });
      }
      local?.extend(key, update);
      const started = { at: clock.now() };
      pending.add(started);
      try {
        await call('extend', () => extendCommand(pinKey(prefix, key), ...args), ignore);
      } catch (error) {
        remember(key, update);
        throw error;
      } finally {
        pending.delete(started);
      }
    },
  };
}

function ignore(): void {}

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
