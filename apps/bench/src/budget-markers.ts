/** Where the budget section (src/budget.ts) sits in docs/BENCHMARKS.md. */
export const BUDGET_START = '<!-- budget:start -->';
export const BUDGET_END = '<!-- budget:end -->';
