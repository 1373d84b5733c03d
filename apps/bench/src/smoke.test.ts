import { describe, expect, it } from 'vitest';
import { checkTargets, mergeRuns, renderMarkdown, replicaShareChart } from './report.js';
import { runBench } from './run.js';
import { SECTIONS, SMOKE } from './settings.js';

// A smoke run, not a measurement: every section runs for fractions of a second against a
// private cluster, to prove that `pnpm bench` works end to end. Nothing is written to docs/.
describe('pnpm bench, smoke run', () => {
  it('runs every section, checks every read, and catches the naive split on a paused replica', async () => {
    const report = await runBench({
      settings: SMOKE,
      sections: SECTIONS,
      mode: 'quick',
      command: 'vitest smoke',
    });

    const overhead = report.overhead!;
    expect(overhead.variants.map((v) => `${v.framework} ${v.key}`)).toEqual(
      ['express', 'fastify'].flatMap((f) =>
        [
          'nodb-bare',
          'nodb-twin',
          'nodb-floor-gate',
          'nodb-session',
          'redis-get',
          'item-bare',
          'item-token',
        ].map((k) => `${f} ${k}`),
      ),
    );
    for (const v of overhead.variants) {
      expect(v.requestsPerSecond, `${v.framework} ${v.key}`).toBeGreaterThan(0);
      expect(v.errors + v.non2xx, `${v.framework} ${v.key}`).toBe(0);
      expect(Number.isFinite(v.ratio)).toBe(true);
      // One single-connection probe per round.
      expect(v.roundsProbeMicros, `${v.framework} ${v.key}`).toHaveLength(1);
      expect(v.probeLatencyMicros, `${v.framework} ${v.key}`).toBeGreaterThan(0);
      // What a variant adds comes from its slices loaded at once with its baseline.
      if (!v.key.endsWith('-bare'))
        expect(v.slicesAddedMicros, `${v.framework} ${v.key}`).toHaveLength(
          (SMOKE.overhead.pairs ?? 0) * SMOKE.overhead.rounds,
        );
    }
    expect(SMOKE.overhead.pairs).toBeGreaterThan(0);
    const session = overhead.variants.find((v) => v.key === 'nodb-session')!;
    expect(session.redisGetsPerRequest).toBeGreaterThan(0.5);
    expect(session.redisGetsPerRequest).toBeLessThanOrEqual(1.01);
    expect(session.probeRedisGetsPerRequest).toBeGreaterThan(0.5);
    expect(session.probeRedisGetsPerRequest).toBeLessThanOrEqual(1.01);

    const cells = report.offload!.cells;
    const cell = (name: string) => cells.find((c) => c.strategy === name)!;
    for (const c of cells) expect(c.reads, c.strategy).toBeGreaterThan(20);
    // One replica was paused the whole time: half of the naive reads went to the past.
    expect(cell('naive-split').readYourWritesViolations).toBeGreaterThan(0);
    // One instance, and two behind a balancer that alternates a session's requests.
    for (const name of ['freshgate-token', 'freshgate-2-instances']) {
      expect(cell(name).readYourWritesViolations, name).toBe(0);
      expect(cell(name).monotonicViolations, name).toBe(0);
      expect(cell(name).replicaShare, name).toBeGreaterThan(0);
      expect(cell(name).errors, name).toBe(0);
    }
    expect(cell('all-primary').replicaShare).toBe(0);
    expect(cell('all-primary').primaryRelative).toBe(1);

    const scaling = report.scaling!;
    expect(scaling.rows.map((r) => r.replicas)).toEqual([0, 2]);
    expect(scaling.rows[0]!.share.primary).toBe(1);
    expect(scaling.rows[1]!.share.primary).toBe(0);
    for (const r of scaling.rows) expect(r.readsPerSecond).toBeGreaterThan(0);

    const markdown = renderMarkdown(report);
    for (const heading of [
      '## Targets',
      '## 1. Per-request overhead',
      '## 2. Primary offload',
      '## 3. Read scaling',
      '## Reading',
    ]) {
      expect(markdown).toContain(heading);
    }
    expect(markdown).toContain('benchmarks-replica-share.svg');
    // The A/A pair gives each framework's resolution.
    expect(markdown.match(/^Resolution: ±\d+\.\d µs per request\. The A\/A pair /gm)).toHaveLength(
      2,
    );
    expect(markdown).not.toMatch(/NaN|undefined/);
    // A report made of several runs names each (`--from … --overhead … --with-overhead …`).
    const merged = mergeRuns(structuredClone(report), {
      overhead: structuredClone(report),
      withOverhead: structuredClone(report),
    });
    expect(merged.runs?.map((r) => r.what)).toEqual([
      'sections 2 and 3',
      'section 1',
      'section 1 again',
    ]);
    expect(renderMarkdown(merged)).toMatch(
      /\| Commands, durations \| `vitest smoke` \(sections 2 and 3, Node\.js [\d.]+(, on [0-9a-f]+(-dirty)?)?, started \d{4}-\d\d-\d\d \d\d:\d\d UTC, \d+ s\); then `vitest smoke` \(section 1, /,
    );
    const svg = replicaShareChart(report.offload!);
    expect(svg).toMatch(/^<svg [^>]+>[\s\S]*<\/svg>\n$/);
    expect(svg).toContain('naive-split');
    const targets = checkTargets(report);
    expect(targets.find((t) => t.target.startsWith('freshgate: exactly 0 violations'))?.met).toBe(
      true,
    );
    expect(targets.find((t) => t.target.startsWith('two instances'))?.result).toMatch(
      /^0 violations in 1 cells \(\d+ checked reads\); replica share over all cells \d+\.\d % vs \d+\.\d % with one instance; largest gap in one cell \d+\.\d points \(paused, 30 % writes: /,
    );
  });
});
