import { describe, expect, it } from 'vitest';
import type { OverheadResult } from './overhead.js';
import { type BenchReport, mergeRuns } from './report.js';

/** A report of one run: what it measured, and when. */
function run(command: string, date: string, sections: { overhead?: boolean; rest?: boolean }) {
  return {
    machine: { date, node: 'v20.20.2' },
    command,
    commit: 'abc1234',
    totalSeconds: 60,
    mode: 'full',
    overhead: sections.overhead ? ({ serverNode: '20.20.2' } as OverheadResult) : undefined,
    offload: sections.rest ? {} : undefined,
    scaling: sections.rest ? {} : undefined,
  } as unknown as BenchReport;
}

describe('mergeRuns', () => {
  it('names each run once, by what the report still takes from it', () => {
    const full = run('pnpm bench', '2026-12-01T00:00:00Z', { overhead: true, rest: true });
    const again = run('BENCH_NODE=n24 pnpm bench --only overhead', '2026-12-01T01:00:00Z', {
      overhead: true,
    });
    const published = mergeRuns(full, { withOverhead: again });
    expect(published.runs?.map((r) => r.what)).toEqual(['sections 1, 2 and 3', 'section 1 again']);

    // Both of its section-1 runs replaced by later ones: the first run gives only sections 2
    // and 3, and the earlier run on the other Node.js is no longer part of it.
    const later = run('pnpm bench --only overhead', '2026-12-02T00:00:00Z', { overhead: true });
    const laterAgain = run('BENCH_NODE=n24 pnpm bench --only overhead', '2026-12-02T01:00:00Z', {
      overhead: true,
    });
    const merged = mergeRuns(published, { overhead: later, withOverhead: laterAgain });
    expect(merged.runs?.map((r) => [r.what, r.date])).toEqual([
      ['sections 2 and 3', '2026-12-01T00:00:00Z'],
      ['section 1', '2026-12-02T00:00:00Z'],
      ['section 1 again', '2026-12-02T01:00:00Z'],
    ]);
    // And once more: the replaced section 1 run goes.
    const latest = run('pnpm bench --only overhead', '2026-12-03T00:00:00Z', { overhead: true });
    expect(mergeRuns(merged, { overhead: latest }).runs?.map((r) => r.what)).toEqual([
      'sections 2 and 3',
      'section 1 again',
      'section 1',
    ]);
  });
});
