/** Where the barrier section (src/barrier.ts) sits in docs/BENCHMARKS.md. */
export const BARRIER_START = '<!-- barrier:start -->';
export const BARRIER_END = '<!-- barrier:end -->';

/** Where the ORM section (src/orm.ts) sits in docs/BENCHMARKS.md. */
export const ORM_START = '<!-- orm:start -->';
export const ORM_END = '<!-- orm:end -->';

/** Where the adaptive budget section (src/budget.ts) sits in docs/BENCHMARKS.md. */
export const BUDGET_START = '<!-- budget:start -->';
export const BUDGET_END = '<!-- budget:end -->';

/** Where the CPU profile section (src/profile.ts) sits in docs/BENCHMARKS.md. */
export const PROFILE_START = '<!-- profile:start -->';
export const PROFILE_END = '<!-- profile:end -->';

/**
 * `report` (the text of docs/BENCHMARKS.md) with `section` (which starts with `start` and ends
 * with `end`) in place of the text between those markers, or before `## Reading` the first time.
 */
export function withSection(report: string, section: string, start: string, end: string): string {
  const from = report.indexOf(start);
  const to = report.indexOf(end);
  return from >= 0 && to > from
    ? `${report.slice(0, from)}${section}${report.slice(to + end.length)}`
    : report.replace('\n## Reading', `\n${section}\n\n## Reading`);
}
