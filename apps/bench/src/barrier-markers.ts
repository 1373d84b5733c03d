/** Where the barrier section (src/barrier.ts) sits in docs/BENCHMARKS.md. */
export const BARRIER_START = '<!-- barrier:start -->';
export const BARRIER_END = '<!-- barrier:end -->';

/** Where the ORM section (src/orm.ts) sits in docs/BENCHMARKS.md. */
export const ORM_START = '<!-- orm:start -->';
export const ORM_END = '<!-- orm:end -->';

/** Where the adaptive budget section (src/budget.ts) sits in docs/BENCHMARKS.md. */
export const BUDGET_START = '<!-- budget:start -->';
export const BUDGET_END = '<!-- budget:end -->';
