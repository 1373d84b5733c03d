import { ConfigError, type Duration } from '@freshgate/core';
import { checkOptions, parseDuration } from '@freshgate/core/adapter';
import type { PoolLike } from './pg-types.js';

/** Default interval between two probe writes. */
export const DEFAULT_PROBE_INTERVAL: Duration = '10s';
/** Default time a replica has to show a probe write before the probe stops waiting for it. */
export const DEFAULT_PROBE_TIMEOUT: Duration = '30s';
/** Default probe table. */
export const DEFAULT_PROBE_TABLE = 'freshgate_probe';

/** Options of the synthetic read-after-write probe (`createFreshgate({ probe })`). */
export interface ProbeOptions {
  /** Time between two probe writes. Default `'10s'`. */
  interval?: Duration;
  /** How long a replica has to show a write; after that it counts as that late. Default `'30s'`. */
  timeout?: Duration;
  /**
   * The probe's table, created if missing (`schema.table` or `table`). It holds one row,
   * updated by every probe write of every app instance. Default `freshgate_probe`.
   */
  table?: string;
  /**
   * Whether a write a replica has not shown yet counts toward that replica's lag for its
   * health (a replica is then at least as late as the oldest write it does not show).
   * Default `true`.
   */
  health?: boolean;
}

/** What the probe last measured of one replica. */
export interface ProbeReplicaStatus {
  /** Milliseconds between the last measured write's acknowledgement and the replica showing it. */
  delayMs: number | null;
  /** Age of the oldest probe write the replica has not shown yet (ms), 0 when none. */
  pendingMs: number;
  /** Writes it showed since start-up. */
  samples: number;
  /** Writes it did not show within `timeout`. */
  timeouts: number;
}

const OPTIONS = ['interval', 'timeout', 'table', 'health'] as const;
const IDENTIFIER = /^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?$/;
/** First pause between two reads of a replica waiting for a write; it grows to 100 ms. */
const FIRST_POLL_MS = 2;
const MAX_POLL_MS = 100;

interface Watch {
  status: ProbeReplicaStatus;
  /** When the oldest write this replica has not shown yet was acknowledged. */
  pendingSince: number | null;
}

/**
 * The synthetic read-after-write probe: every `interval`, one small write on the primary (a
 * counter in a one-row table), then each replica is read until it shows that write. The time
 * between the write's acknowledgement and the replica showing it is the replication delay a
 * user sees — measured, not inferred from WAL positions, so that replay paused or held back by
 * recovery conflicts shows as what it is. Clock-free: it compares a counter, not timestamps.
 *
 * Cost: one row update per interval on the primary and a few indexed reads per replica. Its
 * role needs `CREATE` on the table's schema the first time (or an existing table) and `INSERT`
 * and `UPDATE` on the table; a read-only role cannot run it.
 */
export class ReplicaProbe {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly table: string;
  readonly health: boolean;
  readonly #primary: PoolLike;
  readonly #replicas: ReadonlyMap<string, PoolLike>;
  readonly #record: (replica: string, delayMs: number) => void;
  readonly #watches = new Map<string, Watch>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #created = false;

  constructor(
    options: ProbeOptions | true,
    primary: PoolLike,
    replicas: ReadonlyMap<string, PoolLike>,
    record: (replica: string, delayMs: number) => void,
  ) {
    const given = options === true ? {} : options;
    if (typeof given !== 'object' || given === null) {
      throw new ConfigError('probe', 'expected true or { interval?, timeout?, table?, health? }');
    }
    checkOptions(given, [...OPTIONS], 'probe', 'probe.');
    this.intervalMs = parseDuration(given.interval ?? DEFAULT_PROBE_INTERVAL, 'probe.interval');
    if (this.intervalMs < 1) throw new ConfigError('probe.interval', 'must be greater than 0');
    this.timeoutMs = parseDuration(given.timeout ?? DEFAULT_PROBE_TIMEOUT, 'probe.timeout');
    if (this.timeoutMs < 1) throw new ConfigError('probe.timeout', 'must be greater than 0');
    const table = given.table ?? DEFAULT_PROBE_TABLE;
    if (typeof table !== 'string' || !IDENTIFIER.test(table)) {
      throw new ConfigError(
        'probe.table',
        `expected a lower-case table name, optionally schema-qualified, got ${JSON.stringify(table)}`,
      );
    }
    if (given.health !== undefined && typeof given.health !== 'boolean') {
      throw new ConfigError('probe.health', `expected a boolean, got ${String(given.health)}`);
    }
    this.table = table;
    this.health = given.health ?? true;
    this.#primary = primary;
    this.#replicas = replicas;
    this.#record = record;
    for (const name of replicas.keys()) {
      this.#watches.set(name, {
        status: { delayMs: null, pendingMs: 0, samples: 0, timeouts: 0 },
        pendingSince: null,
      });
    }
  }

  /** Starts probing: the first write at once, then every `interval`. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    const tick = () => {
      this.#running = this.probeOnce().catch(() => {});
      this.#timer = setTimeout(tick, this.intervalMs);
      this.#timer.unref?.();
    };
    tick();
  }

  /** Stops probing and waits for the probe in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /**
   * The age of the oldest probe write `replica` has not shown, ms (0 when none): the least
   * it is behind, as users see it.
   */
  pendingMs(replica: string): number {
    const since = this.#watches.get(replica)?.pendingSince;
    return since == null ? 0 : performance.now() - since;
  }

  /** What the probe last measured, per replica. */
  status(): Record<string, ProbeReplicaStatus> {
    const out: Record<string, ProbeReplicaStatus> = {};
    for (const [name, watch] of this.#watches) {
      out[name] = { ...watch.status, pendingMs: Math.round(this.pendingMs(name)) };
    }
    return out;
  }

  /** One write, then every replica read until it shows it (or `timeout`). Throws if the write fails. */
  async probeOnce(): Promise<void> {
    if (!this.#created) {
      await this.#primary.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (id int PRIMARY KEY, seq bigint NOT NULL)`,
      );
      this.#created = true;
    }
    const { rows } = await this.#primary.query(
      `INSERT INTO ${this.table} AS p (id, seq) VALUES (1, 1)
       ON CONFLICT (id) DO UPDATE SET seq = p.seq + 1 RETURNING seq::text AS seq`,
    );
    const ackedAt = performance.now();
    const seq = BigInt(rows[0]?.seq as string);
    await Promise.all(
      [...this.#replicas].map(([name, pool]) => this.#await(name, pool, seq, ackedAt)),
    );
  }

  async #await(name: string, pool: PoolLike, seq: bigint, ackedAt: number): Promise<void> {
    const watch = this.#watches.get(name) as Watch;
    // A write not shown yet by an earlier probe is older: it stays the pending one.
    watch.pendingSince ??= ackedAt;
    let pause = FIRST_POLL_MS;
    while (!this.#stopped) {
      const elapsed = performance.now() - ackedAt;
      if (elapsed >= this.timeoutMs) {
        watch.status.timeouts++;
        return;
      }
      try {
        const { rows } = await pool.query(
          `SELECT seq::text AS seq FROM ${this.table} WHERE id = 1`,
        );
        const seen = rows[0]?.seq;
        if (typeof seen === 'string' && BigInt(seen) >= seq) {
          const delayMs = performance.now() - ackedAt;
          watch.status.delayMs = delayMs;
          watch.status.samples++;
          // Every write up to this one is shown.
          if (watch.pendingSince !== null && watch.pendingSince <= ackedAt)
            watch.pendingSince = null;
          this.#record(name, delayMs);
          return;
        }
      } catch {
        // A replica that cannot answer is the monitor's to judge; the probe waits on.
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(MAX_POLL_MS, pause * 1.5);
    }
  }
}
