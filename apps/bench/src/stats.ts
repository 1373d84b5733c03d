/** Summary of a latency sample, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** The `q`-quantile (0–1) of an ascending array, nearest-rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The standard error of the median of `values`, estimated from their spread: 1.2533 σ / √n,
 * with σ from the median absolute deviation (× 1.4826), which a few outliers do not move.
 * NaN for fewer than two values.
 */
export function medianStandardError(values: readonly number[]): number {
  if (values.length < 2) return Number.NaN;
  const m = median(values);
  const sigma = 1.4826 * median(values.map((x) => Math.abs(x - m)));
  return (1.2533 * sigma) / Math.sqrt(values.length);
}

/** p50/p99/max of latencies given in milliseconds. */
export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const list = Array.from(sorted);
  return {
    count: list.length,
    p50: quantile(list, 0.5),
    p99: quantile(list, 0.99),
    max: list.at(-1) ?? Number.NaN,
  };
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** `x` rounded to `digits` decimals, as a number. */
export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
