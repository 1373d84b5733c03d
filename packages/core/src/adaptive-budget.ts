import type { BudgetPriority, BudgetSnapshot, FallbackBudget, PrimarySample } from './budget.js';
import { DEFAULT_BUDGET_RESERVE } from './budget.js';
import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';

/** Default floor of the adaptive limit: primary fallbacks in flight that are always allowed. */
export const DEFAULT_ADAPTIVE_MIN = 8;
/** Default ceiling of the adaptive limit: primary fallbacks in flight at most. */
export const DEFAULT_ADAPTIVE_MAX = 256;
/** Default starting limit, before the first measurement. */
export const DEFAULT_ADAPTIVE_INITIAL = 20;
/**
 * Default latency tolerance: the limit keeps growing while the primary's recent statement
 * latency stays within this multiple of its baseline, and shrinks in proportion beyond it.
 */
export const DEFAULT_ADAPTIVE_TOLERANCE = 2;
/** Default measurement window: the limit is adjusted once per window. */
export const DEFAULT_ADAPTIVE_WINDOW_MS = 250;
/** Default time constant of the latency baseline (an exponentially weighted average). */
export const DEFAULT_ADAPTIVE_BASELINE_MS = 30_000;
/**
 * An admitted fallback that was never released stops counting after this long, so that a
 * caller that routes without running the statement cannot shrink the limit for good.
 */
const LEASE_MS = 60_000;
/** A window with fewer primary statements than this says nothing about latency. */
const MIN_SAMPLES = 3;
/** Weight of a faster window in the baseline: it halves a too-high baseline in ~7 windows. */
const FALL = 0.1;
/**
 * Which latency of a window stands for it: a low quantile (TCP Vegas and Envoy's filter also
 * look at the fast end). A slower primary slows every statement, the fastest too; the delays
 * this process adds itself (a busy event loop, a GC pause) hit some statements and not others.
 */
const SHORT_QUANTILE = 0.25;
/** Latencies kept per window to take its quantile. */
const MAX_SAMPLES = 512;
/**
 * How far one window moves the limit towards its target (Gradient2's smoothing): one noisy
 * window cannot halve it, three slow ones in a row do.
 */
const SMOOTHING = 0.5;
/** The largest cut of one window: the limit at least halves no faster than this. */
const MAX_CUT = 0.5;

/** Options of {@link AdaptiveBudget}. */
export interface AdaptiveBudgetOptions {
  /** Floor of the limit. Default {@link DEFAULT_ADAPTIVE_MIN}. */
  min?: number;
  /** Ceiling of the limit. Default {@link DEFAULT_ADAPTIVE_MAX}. */
  max?: number;
  /** Starting limit. Default {@link DEFAULT_ADAPTIVE_INITIAL} (within `min`…`max`). */
  initial?: number;
  /** Latency tolerance (> 1). Default {@link DEFAULT_ADAPTIVE_TOLERANCE}. */
  tolerance?: number;
  /** Adjustment window in ms. Default {@link DEFAULT_ADAPTIVE_WINDOW_MS}. */
  window?: number;
  /** Time constant of the latency baseline in ms. Default {@link DEFAULT_ADAPTIVE_BASELINE_MS}. */
  baseline?: number;
  /** Share of the limit kept for `normal` fallbacks. Default {@link DEFAULT_BUDGET_RESERVE}. */
  reserve?: number;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

function positive(value: unknown, name: string, min: number, what: string): number {
  if (typeof value !== 'number' || !(value >= min) || !Number.isFinite(value))
    throw new ConfigError(name, `expected ${what}, got ${String(value)}`);
  return value;
}

/**
 * A concurrency limit on reads that fall back to the primary, adjusted from what the primary's
 * own statements show (after Netflix concurrency-limits' Gradient2 and Envoy's adaptive
 * concurrency filter). Every primary statement — writes and `strong` reads included, which the
 * limit never refuses — is a sample: its time in the pool queue plus its execution time. Once
 * per window the fast quartile of the window (the short latency) is compared with a slow average of
 * past windows (the baseline):
 *
 * - within `tolerance × baseline`, and with the limit actually in use (at least half of it in
 *   flight), the limit grows by half its square root — fast from small, slow when large;
 * - beyond it, the limit moves half-way towards `limit × tolerance × baseline / short` (a cut
 *   of at most a half), so a primary three times slower than usual loses half its fallbacks
 *   in about three windows;
 * - a failed or timed-out primary statement, or a window in which most statements queued for
 *   a connection (every connection busy) longer than `tolerance × baseline`, halves it at once.
 *
 * Always within `min`…`max`. `low` fallbacks (anonymous or hint-only traffic) pass only while
 * fewer than `(1 − reserve) × limit` fallbacks are in flight, so they cannot take what
 * requests carrying a token or a session key need.
 *
 * @example
 * ```ts
 * const budget = new AdaptiveBudget({ min: 4, max: 128 });
 * if (budget.tryTake()) {
 *   try { await readOnPrimary(); } finally { budget.release(); }
 * }
 * budget.observe({ latencyMs: 1.2, waitMs: 0, failed: false });
 * ```
 */
export class AdaptiveBudget implements FallbackBudget {
  readonly mode = 'adaptive';
  readonly min: number;
  readonly max: number;
  readonly tolerance: number;
  readonly reserve: number;
  readonly #windowMs: number;
  readonly #baselineMs: number;
  readonly #clock: Clock;
  #limit: number;
  /** Admission times of the fallbacks in flight, oldest first (a queue from `#head`). */
  #leases: number[] = [];
  #head = 0;
  #admitted = 0;
  #shed = 0;
  #baseline: number | null = null;
  #short: number | null = null;
  #windowStart: number;
  /** Latencies of the current window (a reservoir sample past {@link MAX_SAMPLES}). */
  #samples: number[] = [];
  #count = 0;
  #failed = false;
  /** Statements of the window that queued for a connection longer than tolerated. */
  #queued = 0;
  /** The most fallbacks in flight during the current window. */
  #peak = 0;

  /** @internal The engine builds the budget from its `budget` option. */
  constructor(options: AdaptiveBudgetOptions = {}) {
    this.min = positive(options.min ?? DEFAULT_ADAPTIVE_MIN, 'budget.min', 1, 'a number >= 1');
    this.max = positive(
      options.max ?? DEFAULT_ADAPTIVE_MAX,
      'budget.max',
      this.min,
      `a number >= budget.min (${this.min})`,
    );
    const initial = positive(
      options.initial ?? DEFAULT_ADAPTIVE_INITIAL,
      'budget.initial',
      1,
      'a number >= 1',
    );
    this.tolerance = positive(
      options.tolerance ?? DEFAULT_ADAPTIVE_TOLERANCE,
      'budget.tolerance',
      1,
      'a latency multiple >= 1, e.g. 1.5',
    );
    this.#windowMs = positive(
      options.window ?? DEFAULT_ADAPTIVE_WINDOW_MS,
      'budget.window',
      1,
      'ms >= 1',
    );
    this.#baselineMs = positive(
      options.baseline ?? DEFAULT_ADAPTIVE_BASELINE_MS,
      'budget.baseline',
      this.#windowMs,
      'ms >= budget.window',
    );
    const reserve = options.reserve ?? DEFAULT_BUDGET_RESERVE;
    if (typeof reserve !== 'number' || !(reserve >= 0 && reserve < 1)) {
      throw new ConfigError(
        'budget.reserve',
        `expected a share of the limit from 0 to below 1, got ${String(reserve)}`,
      );
    }
    this.reserve = reserve;
    this.#limit = Math.min(this.max, Math.max(this.min, initial));
    this.#clock = options.clock ?? systemClock;
    this.#windowStart = this.#clock.now();
  }

  /** The current limit (whole fallbacks in flight), after closing the windows that ended. */
  get limit(): number {
    this.#tick(this.#clock.now());
    return Math.floor(this.#limit);
  }

  /** Fallbacks admitted and not yet released. */
  get inFlight(): number {
    return this.#leases.length - this.#head;
  }

  tryTake(priority: BudgetPriority = 'normal'): boolean {
    const now = this.#clock.now();
    this.#tick(now);
    this.#expire(now);
    const cap = priority === 'low' ? Math.floor(this.limit * (1 - this.reserve)) : this.limit;
    if (this.inFlight >= cap) {
      this.#shed++;
      return false;
    }
    this.#leases.push(now);
    this.#admitted++;
    if (this.inFlight > this.#peak) this.#peak = this.inFlight;
    return true;
  }

  release(): void {
    if (this.inFlight === 0) return;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#leases.length) {
      this.#leases = this.#leases.slice(this.#head);
      this.#head = 0;
    }
  }

  observe(sample: PrimarySample): void {
    const now = this.#clock.now();
    this.#tick(now);
    // Time in the pool's queue is latency the caller sees; opening a new connection is not
    // load (a pool that grows at start-up must not halve the limit).
    const ms = sample.latencyMs + (sample.queued ? sample.waitMs : 0);
    this.#count++;
    if (this.#samples.length < MAX_SAMPLES) this.#samples.push(ms);
    else {
      const slot = Math.floor(Math.random() * this.#count);
      if (slot < MAX_SAMPLES) this.#samples[slot] = ms;
    }
    if (sample.failed) this.#failed = true;
    // Queueing for a connection, for longer than the primary's tolerated latency, is the
    // clearest sign its pool is saturated; a few such waits are a busy moment, most of a
    // window's statements a saturated pool.
    if (
      sample.queued &&
      this.#baseline !== null &&
      sample.waitMs > Math.max(1, this.tolerance * this.#baseline)
    )
      this.#queued++;
  }

  /** A concurrency limit frees up when a fallback ends, not at a known time: retry in 1 s. */
  msUntilNext(): number {
    return this.inFlight < this.limit ? 0 : 1000;
  }

  snapshot(): BudgetSnapshot {
    this.#tick(this.#clock.now());
    return {
      mode: 'adaptive',
      limit: this.limit,
      inFlight: this.inFlight,
      admitted: this.#admitted,
      shed: this.#shed,
      baselineMs: this.#baseline === null ? null : round(this.#baseline),
      latencyMs: this.#short === null ? null : round(this.#short),
      min: this.min,
      max: this.max,
      tolerance: this.tolerance,
    };
  }

  #expire(now: number): void {
    while (this.inFlight > 0 && now - (this.#leases[this.#head] as number) > LEASE_MS)
      this.release();
  }

  /** Closes the windows that ended by `now` and adjusts the limit once per closed window. */
  #tick(now: number): void {
    if (now - this.#windowStart < this.#windowMs) return;
    const windows = Math.floor((now - this.#windowStart) / this.#windowMs);
    this.#windowStart += windows * this.#windowMs;
    this.#adjust(windows);
    this.#samples.length = 0;
    this.#count = 0;
    this.#failed = false;
    this.#queued = 0;
    this.#peak = this.inFlight;
  }

  #adjust(windows: number): void {
    const short = this.#count >= MIN_SAMPLES ? quantile(this.#samples, SHORT_QUANTILE) : null;
    if (this.#failed || this.#queued * 2 > this.#count) {
      this.#set(this.#limit * MAX_CUT);
      // The window's latency is not the primary's normal: keep it out of the baseline.
      if (short !== null) this.#short = short;
      return;
    }
    if (short === null) return;
    this.#short = short;
    if (this.#baseline === null) {
      this.#baseline = short;
      return;
    }
    const ratio = (this.tolerance * this.#baseline) / short;
    if (ratio >= 1) {
      // Grow only a limit in use: an idle limit says nothing about the primary's headroom.
      if (this.#peak * 2 >= this.#limit)
        this.#set(this.#limit + SMOOTHING * Math.sqrt(this.#limit));
    } else {
      const target = this.#limit * Math.max(MAX_CUT, ratio);
      this.#set(this.#limit + SMOOTHING * (target - this.#limit));
    }
    // The baseline is a slow average that falls fast (a first window measured while the pool
    // warmed up must not stand for long) and rises at a tenth of the pace from windows beyond
    // tolerance, so that a primary under strain takes minutes, not seconds, to teach the
    // limiter that slow is normal.
    const alpha = 1 - Math.exp((-windows * this.#windowMs) / this.#baselineMs);
    const weight =
      short < this.#baseline ? Math.max(FALL, alpha) : ratio >= 1 ? alpha : alpha * 0.1;
    this.#baseline += weight * (short - this.#baseline);
  }

  #set(limit: number): void {
    this.#limit = Math.min(this.max, Math.max(this.min, limit));
  }
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
