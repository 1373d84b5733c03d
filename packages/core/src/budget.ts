import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';

/** Default refill rate of the primary budget: primary fallbacks per second. */
export const DEFAULT_BUDGET_RATE = 200;
/** Default burst of the primary budget: fallbacks allowed at once after a quiet period. */
export const DEFAULT_BUDGET_BURST = 400;

/** Options of {@link PrimaryBudget}. */
export interface PrimaryBudgetOptions {
  /** Tokens added per second. Default {@link DEFAULT_BUDGET_RATE}. `Infinity` disables the limit. */
  rate?: number;
  /** Bucket capacity. Default {@link DEFAULT_BUDGET_BURST}. */
  burst?: number;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Token bucket that rate-limits primary fallbacks, so that a lag spike cannot move every
 * read onto the primary at once. Starts full. Driven by a {@link Clock}; no timers.
 *
 * @example
 * ```ts
 * const budget = new PrimaryBudget({ rate: 100, burst: 20 });
 * if (budget.tryTake()) { // read the primary
 * } else { // apply the next fallback
 * }
 * ```
 */
export class PrimaryBudget {
  readonly rate: number;
  readonly burst: number;
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
    this.rate = rate;
    this.burst = burst;
    this.#clock = options.clock ?? systemClock;
    this.#tokens = burst;
    this.#updatedAt = this.#clock.now();
  }

  /** Takes one token if available. */
  tryTake(): boolean {
    if (this.rate === Number.POSITIVE_INFINITY) return true;
    this.#refill();
    if (this.#tokens < 1) return false;
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
