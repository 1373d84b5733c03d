import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';

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
}

/** Default capacity of {@link memoryPinStore}. */
export const DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES = 100_000;

/** Options of {@link memoryPinStore}. */
export interface MemoryPinStoreOptions {
  /** Pins kept at most; the least recently written is dropped first. Default {@link DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES}. */
  maxEntries?: number;
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
  const maxEntries = options.maxEntries ?? DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigError('maxEntries', `expected an integer >= 1, got ${String(maxEntries)}`);
  }
  const clock = options.clock ?? systemClock;
  // Map iteration order is insertion order; re-inserting on write makes the first key the
  // least recently written one.
  const entries = new Map<string, Entry>();

  return {
    async get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      const ttlMs = entry.expiresAt - clock.now();
      if (ttlMs <= 0) {
        entries.delete(key);
        return undefined;
      }
      return { lsn: entry.lsn, node: entry.node, ttlMs };
    },
    async extend(key, update) {
      const now = clock.now();
      let entry = entries.get(key);
      if (entry && entry.expiresAt <= now) entry = undefined;
      const lsn =
        entry?.lsn == null
          ? update.lsn
          : update.lsn !== null && update.lsn > entry.lsn
            ? update.lsn
            : entry.lsn;
      const node = update.node === undefined ? (entry?.node ?? null) : update.node;
      entries.delete(key);
      entries.set(key, { lsn, node, expiresAt: now + update.ttlMs });
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
    },
  };
}
