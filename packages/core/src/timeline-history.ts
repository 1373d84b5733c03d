import { parseLsn } from './lsn.js';
import type { RejectedToken, VerifyResult } from './token-codec.js';

/** One line of a PostgreSQL timeline history file: `timeline` ended at `switchpoint`. */
export interface TimelineSwitch {
  readonly timeline: number;
  /** The first LSN that is not on `timeline` any more (WAL before it is shared with the child). */
  readonly switchpoint: bigint;
}

/**
 * The ancestry of the primary's current timeline, from its timeline history file
 * (`pg_wal/0000000N.history`). `ancestors` is `null` when the history could not be read:
 * then every token of an ancestor timeline is kept as a requirement (see
 * {@link survivesTimelineSwitch}).
 */
export interface ClusterLineage {
  readonly systemId: string;
  readonly timeline: number;
  readonly ancestors: readonly TimelineSwitch[] | null;
}

/**
 * Parses the content of a timeline history file: one `parentTLI <tab> switchpoint <tab> reason`
 * line per ancestor, comments (`#`) and blank lines ignored.
 *
 * @example
 * ```ts
 * parseTimelineHistory('1\t0/3000148\tno recovery target specified\n');
 * // [{ timeline: 1, switchpoint: 50331976n }]
 * ```
 */
export function parseTimelineHistory(text: string): TimelineSwitch[] {
  const switches: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [timeline, switchpoint] = trimmed.split(/\s+/);
    const tli = Number(timeline);
    if (!Number.isSafeInteger(tli) || tli <= 0 || switchpoint === undefined) continue;
    switches.push({ timeline: tli, switchpoint: parseLsn(switchpoint) });
  }
  return switches;
}

/** Splits a cluster id (`<system identifier>/<timeline>`); `null` when it has another form. */
export function parseClusterId(cid: string): { systemId: string; timeline: number } | null {
  const slash = cid.lastIndexOf('/');
  if (slash <= 0) return null;
  const timeline = Number(cid.slice(slash + 1));
  if (!Number.isSafeInteger(timeline) || timeline <= 0) return null;
  return { systemId: cid.slice(0, slash), timeline };
}

/**
 * Whether a position `lsn` observed on cluster `cid` (a token's or a pin's) is still a valid
 * requirement on the primary's current timeline described by `lineage`.
 *
 * The rule: WAL of an ancestor timeline up to the point where it forked is part of every
 * descendant timeline, so an LSN of timeline T at or before T's switchpoint (as listed in the
 * current timeline's history) names writes the new timeline has; an LSN past it may name
 * writes that were lost in the failover, and is dropped. When the history could not be read,
 * every LSN of an older timeline of the same system is kept: as a requirement it can only make
 * a read stricter (a replica must replay that far on the new timeline), never show the past.
 *
 * @example
 * ```ts
 * const lineage = { systemId: '7301', timeline: 2, ancestors: [{ timeline: 1, switchpoint: parseLsn('0/5000000') }] };
 * survivesTimelineSwitch(lineage, '7301/1', parseLsn('0/4000000')); // true
 * survivesTimelineSwitch(lineage, '7301/1', parseLsn('0/6000000')); // false: past the fork
 * ```
 */
export function survivesTimelineSwitch(lineage: ClusterLineage, cid: string, lsn: bigint): boolean {
  const parsed = parseClusterId(cid);
  if (parsed === null || parsed.systemId !== lineage.systemId) return false;
  if (parsed.timeline === lineage.timeline) return true;
  if (parsed.timeline > lineage.timeline) return false;
  if (lineage.ancestors === null) return true;
  const ancestor = lineage.ancestors.find((a) => a.timeline === parsed.timeline);
  return ancestor !== undefined && lsn <= ancestor.switchpoint;
}

const FOREIGN_CLUSTER: RejectedToken = Object.freeze({ ok: false, reason: 'foreign-cluster' });

/**
 * Checks a verified token against the primary's cluster: a token of the current cluster id
 * passes, one of an ancestor timeline passes under {@link survivesTimelineSwitch}, anything
 * else is `foreign-cluster`. Before the monitor has identified the cluster, no check applies.
 */
export function checkTokenCluster(
  result: VerifyResult,
  cid: string | null,
  lineage: ClusterLineage | null,
): VerifyResult {
  if (!result.ok || cid === null || result.cid === cid) return result;
  const current = lineage !== null && `${lineage.systemId}/${lineage.timeline}` === cid;
  return current && survivesTimelineSwitch(lineage, result.cid, result.lsn)
    ? result
    : FOREIGN_CLUSTER;
}
