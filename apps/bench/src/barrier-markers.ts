/** Where the barrier section (src/barrier.ts) sits in docs/BENCHMARKS.md. */
export const BARRIER_START = '<!-- barrier:start -->';
export const BARRIER_END = '<!-- barrier:end -->';
