/** Default number of distinct primary positions remembered for lag measurement. */
export const DEFAULT_HISTORY_SIZE = 2_048;

interface Sample {
  lsn: bigint;
  /** When the primary was first seen at this position. */
  firstAt: number;
  /** When the primary was last seen still at this position. */
  lastAt: number;
}

/**
 * A history of the primary's WAL position, used to turn a replica's replay LSN into a lag in
 * time without trusting replica clocks or replay timestamps (which grow on an idle primary).
 *
 * A replica that has replayed up to R shows the data the primary had at the last moment the
 * primary was still at or before R. That moment lies between the last sample at or before
 * R and the first sample after it; the lag is measured from the earlier end, so it is never
 * under-estimated (at most one poll interval too high).
 *
 * @example
 * ```ts
 * const history = new LsnHistory();
 * history.record(1_000, 100n);
 * history.record(1_100, 200n);
 * history.lagMs(100n, 1_300); // 300: the replica misses what the primary wrote after t=1000
 * ```
 */
export class LsnHistory {
  readonly #samples: Sample[] = [];
  readonly #size: number;

  constructor(size = DEFAULT_HISTORY_SIZE) {
    this.#size = Math.max(2, size);
  }

  /** The newest primary position, or null before the first sample. */
  get latest(): bigint | null {
    return this.#samples.at(-1)?.lsn ?? null;
  }

  /**
   * When the primary was last seen at the newest position, or null before the first sample.
   * A replica that replayed that position lacks at most what the primary wrote since.
   */
  get latestAt(): number | null {
    return this.#samples.at(-1)?.lastAt ?? null;
  }

  /** Records the primary's position at time `at`. A position lower than the last one resets the history (failover, restore). */
  record(at: number, lsn: bigint): void {
    const last = this.#samples.at(-1);
    if (last && lsn === last.lsn) {
      last.lastAt = at;
      return;
    }
    if (last && lsn < last.lsn) this.#samples.length = 0;
    this.#samples.push({ lsn, firstAt: at, lastAt: at });
    if (this.#samples.length > this.#size) this.#samples.shift();
  }

  /** Forgets everything (e.g. after the primary changed). */
  clear(): void {
    this.#samples.length = 0;
  }

  /**
   * How far behind, in ms at time `at`, a replica that has replayed `replayLsn` is; 0 when it
   * has replayed the newest known primary position; null before the first sample.
   */
  lagMs(replayLsn: bigint, at: number): number | null {
    const samples = this.#samples;
    if (samples.length === 0) return null;
    if (replayLsn >= samples[samples.length - 1]!.lsn) return 0;
    // Binary search for the first sample beyond the replay position.
    let lo = 0;
    let hi = samples.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (samples[mid]!.lsn > replayLsn) hi = mid;
      else lo = mid + 1;
    }
    // The primary was still at or before replayLsn at samples[lo - 1].lastAt; before the
    // oldest remembered sample we only know the lag is at least this much.
    const caughtUpTo = lo > 0 ? samples[lo - 1]!.lastAt : samples[0]!.firstAt;
    return Math.max(0, at - caughtUpTo);
  }

  /** Bytes of WAL between the newest primary position and `replayLsn` (0 when caught up). */
  lagBytes(replayLsn: bigint): number | null {
    const latest = this.latest;
    if (latest === null) return null;
    return latest > replayLsn ? Number(latest - replayLsn) : 0;
  }
}
