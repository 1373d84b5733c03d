import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';
import { TokenBucket } from './token-bucket.js';

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

/**
 * What a primary budget tells a status page (`gate.status().budget`). Counters run since
 * start-up; the latency fields belong to the adaptive budget and are `null` for the others.
 *
 * @example
 * ```ts
 * const { mode, limit, shed, latencyMs, baselineMs } = gate.status().budget;
 * ```
 */
export interface BudgetStatus {
  /** `adaptive` (the default), `fixed` (`budget: { rate }`) or `off` (`budget: false`). */
  mode: 'adaptive' | 'fixed' | 'off';
  /** Primary fallbacks per second the budget refills now; `null` when off. */
  limit: number | null;
  /** Fallbacks the bucket holds at most now; `null` when off. */
  burst: number | null;
  /** Tokens left now (fractional); `null` when off. */
  available: number | null;
  /** Primary fallbacks admitted, by priority. */
  admitted: { normal: number; low: number };
  /** Primary fallbacks refused (the read moved on to its next fallback), by priority. */
  shed: { normal: number; low: number };
  /** Adaptive: the limit's bounds and tolerance; `null` otherwise. */
  floor: number | null;
  ceiling: number | null;
  tolerance: number | null;
  /** Adaptive: primary statements reported so far. */
  samples: number;
  /** Adaptive: the primary's usual statement latency (ms), loop delay subtracted. */
  baselineMs: number | null;
  /** Adaptive: the mean statement latency (ms) of the last window, loop delay subtracted. */
  latencyMs: number | null;
  /** Adaptive: the mean event-loop delay (ms) of the last window. */
  loopDelayMs: number | null;
  /**
   * Adaptive: the share of the last window the event loop was busy (0 to 1). Near 1 the process
   * is saturated: latencies it measures then include its own backlog, which no loop-delay
   * timer sees.
   */
  loopUtilization: number | null;
  /** Adaptive: what the last window did to the limit, and why (see `AdaptiveBudget`). */
  lastChange: BudgetChange | null;
  /**
   * Adaptive: primary fallbacks whose statement holds a slot, for a data layer that asks for
   * slots (`@freshgate/pg` does); `null` otherwise.
   */
  inFlight: number | null;
  /** Adaptive: fallbacks in flight at most now (`limit × 100 ms`, at least 1); `null` otherwise. */
  maxInFlight: number | null;
}

/**
 * One window's verdict of the adaptive budget: `increase` (`within-tolerance`: latency held
 * and fallbacks wanted more), `hold` (`no-demand`, `few-samples`) or `decrease` (`latency`,
 * `failures`, `queue`).
 */
export interface BudgetChange {
  change: 'increase' | 'hold' | 'decrease';
  reason: 'within-tolerance' | 'no-demand' | 'few-samples' | 'latency' | 'failures' | 'queue';
  /** Clock time at which the window closed. */
  at: number;
}

/**
 * What the routing decision needs from a primary budget. Implemented by {@link PrimaryBudget}
 * (a fixed rate) and `AdaptiveBudget` (a rate that follows the primary's latency).
 *
 * @example
 * ```ts
 * const budget: FallbackBudget = new PrimaryBudget({ rate: 100 });
 * if (!budget.tryTake('low')) retryAfterMs = budget.msUntilNext();
 * ```
 */
export interface FallbackBudget {
  /** Takes one token if available (for `low`, one above the reserve). */
  tryTake(priority?: BudgetPriority): boolean;
  /** Tokens currently available (fractional). */
  available(): number;
  /** Milliseconds until the next whole token, 0 when one is available. */
  msUntilNext(): number;
  /** The budget's state, for status pages and metrics. */
  status(): BudgetStatus;
  /**
   * A slot for an admitted fallback's statement (the adaptive budget caps fallbacks in flight):
   * `true`, or a promise of whether one came free in time. Absent: no cap.
   */
  enter?(priority?: BudgetPriority): true | Promise<boolean>;
  /** Reports that the statement of a fallback that got a slot ended. */
  release?(): void;
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
  readonly rate: number;
  readonly burst: number;
  /** Tokens that only `normal` fallbacks may take. */
  readonly reserved: number;
  readonly #bucket: TokenBucket;

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
    this.#bucket = new TokenBucket(rate, burst, this.reserved, options.clock ?? systemClock);
  }

  /** Takes one token if available (for `low`, one above the reserve). */
  tryTake(priority: BudgetPriority = 'normal'): boolean {
    return this.#bucket.tryTake(priority);
  }

  /** Tokens currently available (fractional). */
  available(): number {
    return this.#bucket.available();
  }

  /** Milliseconds until the next whole token, 0 when one is available. */
  msUntilNext(): number {
    return this.#bucket.msUntilNext();
  }

  /** Mode `fixed` (`off` with an infinite rate), the rate as the limit, and the counters. */
  status(): BudgetStatus {
    return bucketStatus(this.#bucket, this.rate === Number.POSITIVE_INFINITY ? 'off' : 'fixed');
  }
}

/** The fields of a {@link BudgetStatus} a bucket knows; the adaptive ones left empty. Internal. */
export function bucketStatus(bucket: TokenBucket, mode: BudgetStatus['mode']): BudgetStatus {
  const off = mode === 'off';
  return {
    mode,
    limit: off ? null : bucket.rate,
    burst: off ? null : bucket.burst,
    available: off ? null : bucket.available(),
    admitted: { normal: bucket.admittedNormal, low: bucket.admittedLow },
    shed: { normal: bucket.shedNormal, low: bucket.shedLow },
    floor: null,
    ceiling: null,
    tolerance: null,
    samples: 0,
    baselineMs: null,
    latencyMs: null,
    loopDelayMs: null,
    loopUtilization: null,
    lastChange: null,
    inFlight: null,
    maxInFlight: null,
  };
}
