import { describe, expect, it } from 'vitest';
import { parseLsn } from './lsn.js';
import {
  type ClusterLineage,
  checkTokenCluster,
  parseClusterId,
  parseTimelineHistory,
  survivesTimelineSwitch,
} from './timeline-history.js';

describe('timeline history', () => {
  it('parses the history file PostgreSQL writes at promotion', () => {
    const text =
      '1\t0/3000148\tno recovery target specified\n\n2\t0/50000A0\tno recovery target specified\n';
    expect(parseTimelineHistory(text)).toEqual([
      { timeline: 1, switchpoint: parseLsn('0/3000148') },
      { timeline: 2, switchpoint: parseLsn('0/50000A0') },
    ]);
    expect(parseTimelineHistory('# comment\n')).toEqual([]);
  });

  it('splits cluster ids and refuses other forms', () => {
    expect(parseClusterId('7301234567890123456/3')).toEqual({
      systemId: '7301234567890123456',
      timeline: 3,
    });
    expect(parseClusterId('nope')).toBeNull();
    expect(parseClusterId('7301/x')).toBeNull();
  });

  const lineage: ClusterLineage = {
    systemId: '7301',
    timeline: 3,
    ancestors: [
      { timeline: 1, switchpoint: parseLsn('0/3000000') },
      { timeline: 2, switchpoint: parseLsn('0/5000000') },
    ],
  };

  it('keeps a position of an ancestor timeline at or before its fork point (the write is on the new timeline)', () => {
    expect(survivesTimelineSwitch(lineage, '7301/2', parseLsn('0/5000000'))).toBe(true);
    expect(survivesTimelineSwitch(lineage, '7301/1', parseLsn('0/2FFFFFF'))).toBe(true);
    expect(survivesTimelineSwitch(lineage, '7301/3', parseLsn('9/0'))).toBe(true);
  });

  it('drops a position past the fork point, of another system, or of a timeline not in the history', () => {
    expect(survivesTimelineSwitch(lineage, '7301/2', parseLsn('0/5000001'))).toBe(false);
    expect(survivesTimelineSwitch(lineage, '7301/1', parseLsn('0/4000000'))).toBe(false);
    expect(survivesTimelineSwitch(lineage, '9999/2', parseLsn('0/1'))).toBe(false);
    expect(survivesTimelineSwitch(lineage, '7301/4', parseLsn('0/1'))).toBe(false);
    expect(survivesTimelineSwitch({ ...lineage, ancestors: [] }, '7301/2', parseLsn('0/1'))).toBe(
      false,
    );
  });

  it('keeps every older timeline of the same system when the history is unknown (a stricter requirement, never the past)', () => {
    const unknown: ClusterLineage = { systemId: '7301', timeline: 3, ancestors: null };
    expect(survivesTimelineSwitch(unknown, '7301/1', parseLsn('F/0'))).toBe(true);
    expect(survivesTimelineSwitch(unknown, '7302/1', parseLsn('0/1'))).toBe(false);
  });
});

describe('checkTokenCluster', () => {
  const verified = (cid: string, lsn: string) =>
    ({ ok: true, lsn: parseLsn(lsn), cid, sid: undefined, iat: 0, exp: 0 }) as const;
  const lineage: ClusterLineage = {
    systemId: '7301',
    timeline: 2,
    ancestors: [{ timeline: 1, switchpoint: parseLsn('0/5000000') }],
  };

  it('keeps a parent-timeline token at or before the fork, drops one past it as foreign-cluster', () => {
    expect(checkTokenCluster(verified('7301/1', '0/4000000'), '7301/2', lineage).ok).toBe(true);
    expect(checkTokenCluster(verified('7301/1', '0/6000000'), '7301/2', lineage)).toEqual({
      ok: false,
      reason: 'foreign-cluster',
    });
  });

  it('ignores a lineage that describes another cluster than the primary’s current one', () => {
    expect(checkTokenCluster(verified('7301/1', '0/1'), '7301/3', lineage).ok).toBe(false);
    expect(checkTokenCluster(verified('7301/1', '0/1'), '7301/2', null).ok).toBe(false);
  });

  it('checks nothing before the cluster is known, and passes rejections through', () => {
    expect(checkTokenCluster(verified('9/9', '0/1'), null, null).ok).toBe(true);
    const rejected = { ok: false, reason: 'expired' } as const;
    expect(checkTokenCluster(rejected, '7301/2', lineage)).toBe(rejected);
  });
});
