import { type Meter, metrics } from '@opentelemetry/api';
import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';
import { ATTR_PIN_KIND, METRIC_PIN_EVICTIONS } from './telemetry.js';

/**
 * What a pin store holds for one (hashed) session key.
 */
export interface Pin {
  /**
   * The session's floor: the highest LSN it wrote at or has been proven to have read;
   * `null` when only `node` is known.
   */
  readonly lsn: bigint | null;
  /**
   * The route (`primary` or `replica:<name>`) the session last read from under a
   * monotonic/causal contract, so it can stick to it; `null` when free to choose.
   */
  readonly node: string | null;
  /** Milliseconds until the pin expires. */
  readonly ttlMs: number;
}

/** One write to a pin. */
export interface PinUpdate {
  /** Raises the floor to at least this LSN (the stored value never goes down); `null` leaves it. */
  lsn: bigint | null;
  /** `undefined` keeps the stored node, `null` clears it, a string sets it. */
  node?: string | null;
  /** The pin's new time to live; every write restarts it. */
  ttlMs: number;
}

/**
 * Server-side session pins ("session S wrote at LSN L"). Keys are already hashed by the
 * engine: raw session identifiers never reach a store. Promise-only, so that a networked
 * implementation (Redis) and the memory one are interchangeable; every implementation must
 * pass `pinStoreContract` from `@freshgate/core/testing`.
 *
 * @example
 * ```ts
 * const store: PinStore = memoryPinStore();
 * await store.extend(key, { lsn: parseLsn('0/3000060'), node: null, ttlMs: 5000 });
 * const pin = await store.get(key); // { lsn: 50331744n, node: null, ttlMs: 5000 }
 * ```
 */
export interface PinStore {
  /** The live pin for `key`, or `undefined`. */
  get(key: string): Promise<Pin | undefined>;
  /**
   * Creates or updates the pin atomically: LSN = max(stored, update.lsn), node per
   * {@link PinUpdate.node}, TTL restarted to `update.ttlMs`.
   */
  extend(key: string, update: PinUpdate): Promise<void>;
  /**
   * Optional: whether a missing pin can be trusted to mean "this session wrote nothing". A
   * store shared by several app instances can lose pins the others wrote (a restart without
   * persistence, a failover, `FLUSHALL`, eviction, an instance that could not reach it). The
   * engine reads it after every pin read: when {@link PinStoreVouch.epoch} changed it distrusts
   * absence for one `pinTtl`, and while {@link PinStoreVouch.complete} is `false` as well; a
   * session-key-only read then takes a barrier. A store without it is always trusted.
   */
  vouch?(): PinStoreVouch;
  /**
   * Optional: milliseconds a write whose pin could not be written holds its answer, so that
   * the other instances notice this one is missing from the store (and stop trusting
   * absence) before the client can ask them. Default 0.
   */
  readonly unpinnedHoldMs?: number;
  /**
   * Optional: the store bounds every `get` and `extend` itself, rejecting after at most this
   * many milliseconds. When it is no longer than the engine's `pinStoreTimeout`, the engine
   * sets no timer of its own around the store's calls (one timer and one promise fewer per
   * pin read); otherwise, or when absent, the engine bounds each call. A wrapper around a
   * store that can wait longer than the store (a retry, a queue) must not pass it on.
   */
  readonly timeoutMs?: number;
}

/**
 * What a shared pin store can vouch for, from {@link PinStore.vouch}.
 *
 * @example
 * ```ts
 * const { epoch, complete } = store.vouch?.() ?? { epoch: 0, complete: true };
 * ```
 */
export interface PinStoreVouch {
  /** Grows each time the store found it lost state (restart, failover, flush, eviction). */
  readonly epoch: number;
  /**
   * `false` while a missing pin may be a lost one right now, e.g. another instance stopped
   * reporting to the store and may hold writes it could not pin.
   */
  readonly complete: boolean;
}

/** Default capacity of {@link memoryPinStore}. */
export const DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES = 100_000;

/** Options of {@link memoryPinStore}. */
export interface MemoryPinStoreOptions {
  /**
   * Pins kept at most. When full, the least recently written pin that only names a sticky
   * node is dropped first; a pin holding an LSN (a write) only when no such pin is left. Each
   * drop counts in `freshgate.pin.evictions`. Default 100 000.
   */
  maxEntries?: number;
  /** Meter of the eviction counter. Default: `metrics.getMeter('@freshgate/core')`. */
  meter?: Meter;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

interface Entry {
  lsn: bigint | null;
  node: string | null;
  expiresAt: number;
}

/**
 * A bounded, TTL-honouring in-process {@link PinStore}, for a single process or tests. Use
 * the Redis store when several processes serve the same sessions.
 *
 * @example
 * ```ts
 * const engine = await createEngine({ topology, secret, pinStore: memoryPinStore({ maxEntries: 10_000 }) });
 * ```
 */
export function memoryPinStore(options: MemoryPinStoreOptions = {}): PinStore {
  const pins = memoryPins(options);
  return {
    async get(key) {
      return pins.get(key);
    },
    async extend(key, update) {
      pins.extend(key, update);
    },
  };
}

/** The memory pin store's pins, read and written synchronously. */
export interface MemoryPins {
  get(key: string): Pin | undefined;
  extend(key: string, update: PinUpdate): void;
}

/**
 * What {@link memoryPinStore} keeps, without the promises: for a store that holds pins of its
 * own beside a networked one (the Redis store keeps the pins its process wrote), where a
 * promise per read would only add work to every pin read.
 *
 * @throws {ConfigError} for a `maxEntries` that is not an integer >= 1.
 * @example
 * ```ts
 * const pins = memoryPins({ maxEntries: 10_000 });
 * pins.extend(key, { lsn: 0x16b3748n, ttlMs: 30_000 });
 * pins.get(key); // { lsn: 0x16b3748n, node: null, ttlMs: 30000 }
 * ```
 */
export function memoryPins(options: MemoryPinStoreOptions = {}): MemoryPins {
  const maxEntries = options.maxEntries ?? DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigError('maxEntries', `expected an integer >= 1, got ${String(maxEntries)}`);
  }
  const clock = options.clock ?? systemClock;
  const evictions = (options.meter ?? metrics.getMeter('@freshgate/core')).createCounter(
    METRIC_PIN_EVICTIONS,
    { description: 'Pins dropped by the memory pin store to stay within maxEntries, by kind' },
  );
  const NODE = Object.freeze({ [ATTR_PIN_KIND]: 'node' });
  const LSN = Object.freeze({ [ATTR_PIN_KIND]: 'lsn' });
  // Exported from the start at 0 for both kinds: alerts see the series before the first eviction.
  evictions.add(0, NODE);
  evictions.add(0, LSN);
  // Map iteration order is insertion order; re-inserting on write makes the first key the
  // least recently written one. Pins that only name a sticky node are kept apart from those
  // holding an LSN: any request under a new session key can create the former, so a flood of
  // them must not push out another session's write.
  const nodePins = new Map<string, Entry>();
  const lsnPins = new Map<string, Entry>();

  function evictOne(): void {
    const now = clock.now();
    const from = nodePins.size > 0 ? nodePins : lsnPins;
    const oldest = from.keys().next();
    if (oldest.done) return;
    const expired = (from.get(oldest.value) as Entry).expiresAt <= now;
    from.delete(oldest.value);
    if (!expired) evictions.add(1, from === nodePins ? NODE : LSN);
  }

  return {
    get(key) {
      const entry = lsnPins.get(key) ?? nodePins.get(key);
      if (!entry) return undefined;
      const ttlMs = entry.expiresAt - clock.now();
      if (ttlMs <= 0) {
        lsnPins.delete(key);
        nodePins.delete(key);
        return undefined;
      }
      return { lsn: entry.lsn, node: entry.node, ttlMs };
    },
    extend(key, update) {
      const now = clock.now();
      let entry = lsnPins.get(key) ?? nodePins.get(key);
      if (entry && entry.expiresAt <= now) entry = undefined;
      const lsn =
        entry?.lsn == null
          ? update.lsn
          : update.lsn !== null && update.lsn > entry.lsn
            ? update.lsn
            : entry.lsn;
      const node = update.node === undefined ? (entry?.node ?? null) : update.node;
      lsnPins.delete(key);
      nodePins.delete(key);
      (lsn === null ? nodePins : lsnPins).set(key, { lsn, node, expiresAt: now + update.ttlMs });
      if (nodePins.size + lsnPins.size > maxEntries) evictOne();
    },
  };
}
