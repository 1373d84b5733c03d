/** One violation found by {@link HistoryChecker}. */
export interface Violation {
  kind: 'read-your-writes' | 'monotonic';
  session: string;
  key: string;
  /** Version the read returned (0: the record was absent). */
  saw: number;
  /** Version the session was entitled to at least. */
  expected: number;
  route?: string | undefined;
}

/** Totals of a checked history. */
export interface HistoryReport {
  writes: number;
  reads: number;
  readYourWritesViolations: number;
  monotonicViolations: number;
  /** The first few violations, for a readable failure message. */
  examples: Violation[];
}

interface Seen {
  version: number;
  /** When the observation became known to the session (write acknowledged, read returned). */
  at: number;
}

/**
 * A black-box checker of read histories: every write returns a version, every read reports
 * the version it saw (0 when the record was absent). It knows nothing about freshgate, only
 * what clients observed:
 *
 * - a read-your-writes violation is a read that starts after the session's acknowledged write
 *   of a record and returns an older version of it;
 * - a monotonic violation is a read that starts after the session already saw (read or
 *   wrote) a version of a record, and returns a lower one.
 *
 * Observations must be recorded with the client's clock, in any order; `report()` replays them.
 *
 * @example
 * ```ts
 * const history = new HistoryChecker();
 * history.write('ada', 'case:1', 1, ackAt);
 * history.read('ada', 'case:1', 0, startedAt, endedAt); // a violation if startedAt > ackAt
 * expect(history.report().readYourWritesViolations).toBe(0);
 * ```
 */
export class HistoryChecker {
  readonly #events: (
    | { type: 'write'; session: string; key: string; version: number; at: number }
    | {
        type: 'read';
        session: string;
        key: string;
        version: number;
        start: number;
        end: number;
        route?: string | undefined;
        raises: boolean;
      }
  )[] = [];

  /** A write of `key` by `session` that was acknowledged at `ackAt` with `version`. */
  write(session: string, key: string, version: number, ackAt: number): void {
    this.#events.push({ type: 'write', session, key, version, at: ackAt });
  }

  /**
   * A read of `key` by `session` that started at `start`, returned at `end` and saw `version`
   * (0 = absent). `raises: false` for a read under a contract that does not carry what it read
   * forward (read-your-writes returns no token): it is checked against what the session knew,
   * and adds nothing to it. Without failures this changes nothing (every version a session sees
   * of its own records was acknowledged to it first); after a write whose outcome the session
   * never learnt (an error after the commit) it keeps that version from counting as seen.
   */
  read(
    session: string,
    key: string,
    version: number,
    start: number,
    end: number,
    route?: string,
    options: { raises?: boolean } = {},
  ): void {
    this.#events.push({
      type: 'read',
      session,
      key,
      version,
      start,
      end,
      route,
      raises: options.raises ?? true,
    });
  }

  report(maxExamples = 5): HistoryReport {
    const report: HistoryReport = {
      writes: 0,
      reads: 0,
      readYourWritesViolations: 0,
      monotonicViolations: 0,
      examples: [],
    };
    // Per session and key: every acknowledged write and completed read, to compare each read
    // against what the session had observed before the read started.
    const written = new Map<string, Seen[]>();
    const read = new Map<string, Seen[]>();
    for (const e of this.#events) {
      const id = `${e.session}\0${e.key}`;
      if (e.type === 'write') {
        report.writes++;
        (written.get(id) ?? written.set(id, []).get(id)!).push({ version: e.version, at: e.at });
      } else if (e.raises) {
        (read.get(id) ?? read.set(id, []).get(id)!).push({ version: e.version, at: e.end });
      }
    }
    const maxBefore = (seen: Seen[] | undefined, start: number) => {
      let max = 0;
      for (const s of seen ?? []) if (s.at < start && s.version > max) max = s.version;
      return max;
    };
    for (const e of this.#events) {
      if (e.type !== 'read') continue;
      report.reads++;
      const id = `${e.session}\0${e.key}`;
      const ownWrite = maxBefore(written.get(id), e.start);
      const alreadySeen = Math.max(ownWrite, maxBefore(read.get(id), e.start));
      let kind: Violation['kind'] | undefined;
      let expected = 0;
      if (e.version < ownWrite) {
        report.readYourWritesViolations++;
        kind = 'read-your-writes';
        expected = ownWrite;
      } else if (e.version < alreadySeen) {
        report.monotonicViolations++;
        kind = 'monotonic';
        expected = alreadySeen;
      }
      if (kind && report.examples.length < maxExamples) {
        report.examples.push({
          kind,
          session: e.session,
          key: e.key,
          saw: e.version,
          expected,
          route: e.route,
        });
      }
    }
    return report;
  }
}
