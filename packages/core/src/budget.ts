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

/** One finished statement on the primary, as the data layer measured it. */
export interface PrimarySample {
  /** Time from sending the statement to its result (or error), ms. */
  latencyMs: number;
  /** Time spent getting a connection of the primary's pool (queueing or connecting), ms. */
  waitMs: number;
  /**
   * Every connection of the pool was busy: the statement queued behind others (not merely
   * waited for a new connection to open).
   */
  queued: boolean;
  /** It failed for the node's sake: a connection error, a statement or pool-queue timeout. */
  failed: boolean;
}

/** What `status().budget` and the budget metrics report. */
export interface BudgetSnapshot {
  /** `adaptive`: a concurrency limit driven by latency; `fixed`: a token bucket. */
  mode: 'adaptive' | 'fixed';
  /**
   * Adaptive: primary fallbacks allowed in flight now. Fixed: whole tokens in the bucket.
   */
  limit: number;
  /** Admitted primary fallbacks still running (adaptive; 0 for fixed). */
  inFlight: number;
  /** Primary fallbacks admitted since start-up. */
  admitted: number;
  /** Primary fallbacks refused since start-up (each moved on to the next fallback or a 503). */
  shed: number;
  /** Adaptive: the latency baseline of primary statements (queue wait included), ms. */
  baselineMs: number | null;
  /** Adaptive: the mean latency of the last measured window, ms. */
  latencyMs: number | null;
  /** Adaptive: floor and ceiling of the limit; fixed: `rate` and `burst`. */
  min: number;
  max: number;
  /** Adaptive: the latency tolerance; fixed: `null`. */
  tolerance: number | null;
}

/**
 * What decides whether a read may fall back to the primary: {@link PrimaryBudget} (a fixed
 * rate) or `AdaptiveBudget` (a concurrency limit that follows the primary's latency).
 */
export interface FallbackBudget {
  readonly mode: 'adaptive' | 'fixed';
  /** Admits one primary fallback (for `low`, only above the reserve). */
  tryTake(priority?: BudgetPriority): boolean;
  /** An admitted fallback's statement finished (successfully or not). */
  release(): void;
  /** One primary statement finished: every statement counts, fallback or not. */
  observe(sample: PrimarySample): void;
  /** Milliseconds until a refused fallback may pass (the `Retry-After` of a shed read). */
  msUntilNext(): number;
  snapshot(): BudgetSnapshot;
}

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
export class PrimaryBudget implements FallbackBudget {
  readonly mode = 'fixed';
  readonly rate: number;
  readonly burst: number;
  /** Tokens that only `normal` fallbacks may take. */
  readonly reserved: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;
  #admitted = 0;
  #shed = 0;

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
    if (this.rate === Number.POSITIVE_INFINITY) {
      this.#admitted++;
      return true;
    }
    this.#refill();
    const floor = priority === 'low' ? this.reserved : 0;
    if (this.#tokens - floor < 1) {
      this.#shed++;
      return false;
    }
    this.#tokens -= 1;
    this.#admitted++;
    return true;
  }

  /** A rate limit takes nothing back when a fallback ends. */
  release(): void {}

  /** A fixed rate does not follow the primary's latency. */
  observe(_sample: PrimarySample): void {}

  snapshot(): BudgetSnapshot {
    return {
      mode: 'fixed',
      limit: this.rate === Number.POSITIVE_INFINITY ? this.burst : Math.floor(this.available()),
      inFlight: 0,
      admitted: this.#admitted,
      shed: this.#shed,
      baselineMs: null,
      latencyMs: null,
      min: this.rate,
      max: this.burst,
      tolerance: null,
    };
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
