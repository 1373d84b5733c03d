import { AdaptiveBudget } from './adaptive-budget.js';
import { type FallbackBudget, PrimaryBudget } from './budget.js';
import { checkOptions } from './check-options.js';
import type { Clock } from './clock.js';
import { ConfigError } from './errors.js';
import type { LoopDelay } from './loop-delay.js';

/**
 * The adaptive limit (the default): primary fallbacks per second between `floor` and
 * `ceiling`, following the primary's statement latency (see `AdaptiveBudget`).
 */
export interface AdaptiveBudgetSettings {
  /**
   * Lowest limit, fallbacks per second. Default `200`, the fixed rate (the default never admits
   * fewer fallbacks a second than the fixed budget did); lower it to let a small primary shed below that.
   */
  floor?: number;
  /** Highest limit, fallbacks per second. Default `5000`. */
  ceiling?: number;
  /** Starting limit. Default `200` (clamped to `floor`/`ceiling`). */
  initial?: number;
  /** Latency beyond `tolerance ×` the primary's usual latency cuts the limit. Default `2`. */
  tolerance?: number;
  /** Share of the burst anonymous traffic cannot take. Default `0.5`. */
  reserve?: number;
  rate?: never;
  burst?: never;
}

/** A fixed rate that never looks at the primary: the budget of earlier versions. */
export interface FixedBudgetSettings {
  /** Fallbacks per second. */
  rate: number;
  /** Fallbacks at once after a quiet period. Default `400`. */
  burst?: number;
  /** Share of the burst anonymous traffic cannot take. Default `0.5`. */
  reserve?: number;
  floor?: never;
  ceiling?: never;
  initial?: never;
  tolerance?: never;
}

/**
 * The engine's `budget` option: `{ floor?, ceiling?, initial?, tolerance?, reserve? }` (the
 * adaptive limit, also `{}` and the default) or `{ rate, burst?, reserve? }` (a fixed rate).
 *
 * @example
 * ```ts
 * createFreshgate({ ...options, budget: { floor: 20, ceiling: 1000 } }); // adaptive
 * createFreshgate({ ...options, budget: { rate: 200, burst: 400 } }); // fixed, as before
 * ```
 */
export type BudgetOptions = AdaptiveBudgetSettings | FixedBudgetSettings;

const ADAPTIVE = ['floor', 'ceiling', 'initial', 'tolerance'] as const;
const FIXED = ['rate', 'burst'] as const;
const ALL = [...ADAPTIVE, ...FIXED, 'reserve'];

/**
 * The budget the engine's `budget` option asks for; `null` for `false`. Every bad value throws
 * a `ConfigError` naming it. Internal.
 */
export function createBudget(
  options: BudgetOptions | false | undefined,
  clock: Clock,
  loopDelay: LoopDelay,
): FallbackBudget | null {
  if (options === false) return null;
  const given = options === undefined ? {} : options;
  checkOptions(given, ALL, 'budget', 'budget.');
  const fixed = FIXED.find((key) => given[key] !== undefined);
  const adaptive = ADAPTIVE.find((key) => given[key] !== undefined);
  if (fixed !== undefined && adaptive !== undefined) {
    throw new ConfigError(
      `budget.${adaptive}`,
      `cannot be combined with \`${fixed}\`: give { rate, burst?, reserve? } for a fixed rate, or { floor?, ceiling?, initial?, tolerance?, reserve? } for the adaptive limit`,
    );
  }
  if (fixed !== undefined) {
    const { rate, burst, reserve } = given as FixedBudgetSettings;
    return new PrimaryBudget({ rate, burst, reserve, clock });
  }
  const { floor, ceiling, initial, tolerance, reserve } = given as AdaptiveBudgetSettings;
  return new AdaptiveBudget({ floor, ceiling, initial, tolerance, reserve, clock, loopDelay });
}
