import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';

/** Default refill rate of the primary budget: primary fallbacks per second. */
export const DEFAULT_BUDGET_RATE = 200;
/** Default burst of the primary budget: fallbacks allowed at once after a quiet period. */
export const DEFAULT_BUDGET_BURST = 400;
/**
 * Default share of the burst that only `normal` fallbacks may take: `low` fallbacks (requests
 * that prove nothing: no valid token, no session key) stop while the bucket is below it.
 */
export const DEFAULT_BUDGET_RESERVE = 0.5;

/**
 * Who a primary fallback is for. `normal`: a request that carries a valid token or a session
 * key (its fallback protects a user's own writes). `low`: anonymous or hint-only traffic and
 * tokens whose LSN the primary has not reached; they may use the budget only above the reserve,
 * so that no such flood can drain it for others.
 */
export type BudgetPriority = 'normal' | 'low';

/** Options of {@link PrimaryBudget}. */
export interface PrimaryBudgetOptions {
  /** Tokens added per second. Default {@link DEFAULT_BUDGET_RATE}. `Infinity` disables the limit. */
  rate?: number;
  /** Bucket capacity. Default {@link DEFAULT_BUDGET_BURST}. */
  burst?: number;
  /**
   * Share of `burst` (0 to 1) kept for `normal` fallbacks: `low` ones pass only while more
   * tokens than this are left. Default {@link DEFAULT_BUDGET_RESERVE}.
   */
  reserve?: number;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Token bucket that rate-limits primary fallbacks, so that a lag spike cannot move every
 * read onto the primary at once. Starts full. Driven by a {@link Clock}; no timers.
 *
 * Fair rather than first come, first served: `low` fallbacks (anonymous traffic) take only
 * the tokens above the reserve, so a flood of them leaves `reserve × burst` tokens, and the
 * whole refill once the bucket is below the reserve, to requests that carry a token or a
 * session key.
 *
 * @example
 * ```ts
 * const budget = new PrimaryBudget({ rate: 100, burst: 20 });
 * if (budget.tryTake()) { // read the primary
 * } else { // apply the next fallback
 * }
 * budget.tryTake('low'); // an anonymous request: only above the reserve
 * ```
 */
export class PrimaryBudget {
  readonly rate: number;
  readonly burst: number;
  /** Tokens that only `normal` fallbacks may take. */
  readonly reserved: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;

  /** @internal The engine builds the budget from its `budget` option. */
  constructor(options: PrimaryBudgetOptions = {}) {
    const rate = options.rate ?? DEFAULT_BUDGET_RATE;
    const burst = options.burst ?? DEFAULT_BUDGET_BURST;
    if (typeof rate !== 'number' || !(rate > 0)) {
      throw new ConfigError(
        'budget.rate',
        `expected a number of fallbacks per second > 0, got ${String(rate)}`,
      );
    }
    if (typeof burst !== 'number' || !(burst >= 1)) {
      throw new ConfigError('budget.burst', `expected a number >= 1, got ${String(burst)}`);
    }
    const reserve = options.reserve ?? DEFAULT_BUDGET_RESERVE;
    if (typeof reserve !== 'number' || !(reserve >= 0 && reserve < 1)) {
      throw new ConfigError(
        'budget.reserve',
        `expected a share of the burst from 0 to below 1, got ${String(reserve)}`,
      );
    }
    this.rate = rate;
    this.burst = burst;
    this.reserved = Math.floor(burst * reserve);
    this.#clock = options.clock ?? systemClock;
    this.#tokens = burst;
    this.#updatedAt = this.#clock.now();
  }

  /** Takes one token if available (for `low`, one above the reserve). */
  tryTake(priority: BudgetPriority = 'normal'): boolean {
    if (this.rate === Number.POSITIVE_INFINITY) return true;
    this.#refill();
    const floor = priority === 'low' ? this.reserved : 0;
    if (this.#tokens - floor < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens currently available (fractional). */
  available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Milliseconds until the next whole token, 0 when one is available. */
  msUntilNext(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) * 1000) / this.rate;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#updatedAt;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
      this.#updatedAt = now;
    }
  }
}
