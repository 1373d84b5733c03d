import { type BarrierSource, type Clock, parseLsn } from '@freshgate/core';
import { SharedRead } from './shared-read.js';

/** Runs one statement on the primary, on a connection no request queues for. */
export type PrimaryQuery = (text: string) => Promise<{ rows: Record<string, unknown>[] }>;

/** A primary position and the clock time at which the statement that read it was sent. */
export interface PrimarySample {
  lsn: bigint;
  sentAt: number;
}

/**
 * The primary's WAL position as observed after a given moment, for barrier reads.
 *
 * A monitor sample whose poll was sent after the moment is used as is (no I/O). Otherwise one
 * `SELECT pg_current_wal_lsn()` (it reads no table) runs on the primary, shared by every
 * barrier that started before it was sent: at most one is in flight and one queued behind it,
 * so a flood of barrier reads costs one round trip per round trip time, whatever its size.
 * It runs on a connection of its own: behind the pool's queue, a flood's own primary reads
 * would delay every barrier.
 * Waiting for the next monitor sample instead would cost half a poll interval on average
 * (50 ms at the default 100 ms) against ~0.1–0.3 ms for the round trip (docs/degraded-modes.md).
 *
 * @example
 * ```ts
 * const probe = new PrimaryPosition((sql) => client.query(sql), clock, () => monitor.primarySample());
 * const { lsn } = await probe.after(requestStartedAt);
 * ```
 */
export class PrimaryPosition {
  readonly #sample: () => PrimarySample | null;
  readonly #read: SharedRead<bigint>;

  constructor(query: PrimaryQuery, clock: Clock, sample: () => PrimarySample | null) {
    this.#sample = sample;
    this.#read = new SharedRead(
      () =>
        query('SELECT pg_current_wal_lsn()::text AS lsn').then(({ rows }) => {
          const text = rows[0]?.lsn;
          if (typeof text !== 'string')
            throw new Error('freshgate: the primary has no WAL position');
          return parseLsn(text);
        }),
      clock,
    );
  }

  /** A primary position read by a statement sent at or after clock time `since`. */
  async after(since: number): Promise<{ lsn: bigint; source: BarrierSource }> {
    const sample = this.#sample();
    if (sample !== null && sample.sentAt >= since) return { lsn: sample.lsn, source: 'monitor' };
    const { value, shared } = this.#read.after(since);
    return { lsn: await value, source: shared ? 'shared' : 'query' };
  }
}
