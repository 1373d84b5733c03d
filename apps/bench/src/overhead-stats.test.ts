import { describe, expect, it } from 'vitest';
import {
  type OverheadResult,
  pairedMedian,
  resolutionMicros,
  type VariantResult,
} from './overhead.js';
import { type BenchReport, checkTargets, verdictText } from './report.js';
import { FULL } from './settings.js';
import { medianStandardError } from './stats.js';

describe('pairedMedian', () => {
  it("pairs each round's measurements and takes the median of the differences", () => {
    // A slow second round moves both: its difference still counts as 10.
    expect(pairedMedian([110, 210, 120], [100, 200, 100])).toBe(10);
    expect(pairedMedian([5, 7], [1, 1, 1])).toBe(5);
    expect(pairedMedian([], [1])).toBeUndefined();
  });
});

describe('medianStandardError', () => {
  it('scales the median absolute deviation, and one outlier does not move it', () => {
    // MAD 1 → σ 1.4826 → 1.2533 σ / √4.
    expect(medianStandardError([-1, 1, -1, 1])).toBeCloseTo((1.2533 * 1.4826) / 2, 6);
    expect(medianStandardError([-2, -1, 0, 1, 500])).toBe(medianStandardError([-2, -1, 0, 1, 2]));
    expect(medianStandardError([3])).toBeNaN();
  });
});

/** A section-1 variant with the figures the targets read. */
function variant(key: string, addedMicros: number, slices: number[] = []): VariantResult {
  return {
    framework: 'express',
    key,
    label: key,
    route: 'nodb',
    requestsPerSecond: 1,
    rounds: [1],
    p50Ms: 1,
    p99Ms: 1,
    errors: 0,
    non2xx: 0,
    serverCpuPercent: undefined,
    cpuMicrosPerRequest: undefined,
    roundsCpuMicros: [],
    gcMicrosPerRequest: undefined,
    redisGetsPerRequest: 0,
    pinReadFailureShare: 0,
    probeLatencyMicros: undefined,
    roundsProbeMicros: [],
    probeAddedMicros: undefined,
    probeRedisGetsPerRequest: undefined,
    ratio: 1,
    addedMicros,
    slicesAddedMicros: slices,
    floorMultiple: undefined,
    deltaP99Ms: 0,
  };
}

function report(variants: VariantResult[]): BenchReport {
  const overhead: OverheadResult = {
    settings: { ...FULL.overhead, frameworks: ['express'] },
    pinning: '',
    redisRoundTrip: { p50Micros: 1, p99Micros: 1 },
    variants,
    serverNode: '24.0.0',
    loadBefore: 0,
    loadAfter: 0,
    seconds: 1,
  };
  return { overhead } as BenchReport;
}

const noTokenCheck = (r: BenchReport) =>
  checkTargets(r).find((c) => c.target.startsWith('express: no-token path'));

describe("section 1's resolution", () => {
  it("is the larger of the A/A pair's difference and twice the standard error of its median", () => {
    const spread = [-2, 2, -2, 2, -2, 2, -2, 2, -2, 2];
    expect(resolutionMicros(variant('nodb-twin', 0, spread))).toBeCloseTo(
      2 * medianStandardError(spread),
      6,
    );
    // Two servers that should cost the same and differ by 3 µs in every slice.
    expect(resolutionMicros(variant('nodb-twin', 3, [3, 3, 3, 3]))).toBe(3);
    expect(resolutionMicros(undefined)).toBeUndefined();
    // Rounds whose servers settled differently: slices agree within a round, rounds do not.
    // The rounds' spread counts (each round's slices taken together), not the slices'.
    const rounds = [-4, -4, 4, 4, -4, -4, 4, 4, 0, 0];
    expect(resolutionMicros(variant('nodb-twin', 0, rounds), 2)).toBeCloseTo(
      2 * medianStandardError([-4, 4, -4, 4, 0]),
      6,
    );
    expect(resolutionMicros(variant('nodb-twin', 1, [1]))).toBeUndefined();
  });

  it('marks a ratio verdict that a shift of each figure by the resolution could turn', () => {
    const twin = variant('nodb-twin', 0.5, [0.5, 0.5, 0.5, 0.5]);
    // Floor +2, bar 1.5 × 2 = 3 µs; the verdict turns within (1.5 + 1) × 0.5 = 1.25 µs of it.
    const close = noTokenCheck(report([twin, variant('nodb-floor', 2), variant('nodb-none', 3.5)]));
    expect(close).toMatchObject({ met: false, withinNoise: true });
    expect(verdictText(close!)).toBe('**no** (within the noise)');
    expect(close!.result).toContain('resolution ±0.5 µs (A/A)');
    const clear = noTokenCheck(report([twin, variant('nodb-floor', 2), variant('nodb-none', 5)]));
    expect(clear).toMatchObject({ met: false, withinNoise: false });
    expect(verdictText(clear!)).toBe('**no**');
    const met = noTokenCheck(report([twin, variant('nodb-floor', 2), variant('nodb-none', 1)]));
    expect(met).toMatchObject({ met: true, withinNoise: false });
  });

  it('compares a floor below the resolution as if it added the resolution', () => {
    const twin = variant('nodb-twin', 4, [4, 4, 4, 4]);
    const check = noTokenCheck(report([twin, variant('nodb-floor', 1), variant('nodb-none', 5)]));
    // The bar: 1.5 × 4 µs.
    expect(check).toMatchObject({ met: true, withinNoise: true });
    expect(check!.result).toContain('the floor is within the noise: the bar is 1.5 × 4.0 µs');
  });

  it('reads a run without an A/A pair at 1 µs and never calls its verdicts noise', () => {
    const check = noTokenCheck(report([variant('nodb-floor', 2), variant('nodb-none', 3.2)]));
    expect(check).toMatchObject({ met: false, withinNoise: false });
    expect(check!.result).not.toContain('A/A');
  });
});
