import {
  type BudgetChange,
  type BudgetPriority,
  type BudgetStatus,
  bucketStatus,
  DEFAULT_BUDGET_RATE,
  DEFAULT_BUDGET_RESERVE,
  type FallbackBudget,
} from './budget.js';
import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';
import type { LoopDelay } from './loop-delay.js';
import { TokenBucket } from './token-bucket.js';

/**
 * Default lowest limit of the adaptive budget, primary fallbacks per second: the fixed rate of
 * the fixed budget, so that by default the adaptive budget never admits fewer fallbacks a second
 * than the fixed one did (its burst at the floor is the fixed one's too; of a burst, what the
 * primary does not answer within 100 ms is shed, where the fixed budget queued it). A statement latency measured inside a
 * busy application process says as much about the process as about the primary; cutting below
 * the rate every deployment had is left to those who lower the floor for a small primary.
 */
export const DEFAULT_BUDGET_FLOOR = DEFAULT_BUDGET_RATE;
/**
 * Default highest limit of the adaptive budget, primary fallbacks per second: what the
 * default pool of 10 connections carries at 2 ms a statement. Latency can only show load
 * once it builds; the ceiling bounds how far a lag storm can move reads onto a primary before
 * that shows.
 */
export const DEFAULT_BUDGET_CEILING = 5_000;
/** Default starting limit: the fixed default rate, so a new process behaves as before until it has measured. */
export const DEFAULT_BUDGET_INITIAL = DEFAULT_BUDGET_RATE;
/**
 * Default tolerance: a window whose mean latency is beyond `tolerance × (baseline + loop
 * delay)` cuts the limit. 2: a queue as long as the work in service doubles the latency.
 */
export const DEFAULT_BUDGET_TOLERANCE = 2;

/**
 * How one statement on the primary ended, for {@link AdaptiveBudget.observe}. `ok`: the server
 * answered, with rows or with the statement's own SQL error; `error`: the node failed it
 * (connection lost or refused, out of resources); `timeout`: a statement timeout, or no pool
 * connection within the pool's timeout.
 */
export type PrimaryOutcome = 'ok' | 'error' | 'timeout';

/** Options of {@link AdaptiveBudget}; every bound in primary fallbacks per second. */
export interface AdaptiveBudgetOptions {
  /** Lowest limit. Default `200` (the fixed budget's rate): lower it to shed below that for a small primary. */
  floor?: number;
  /** Highest limit. Default `5000`. */
  ceiling?: number;
  /** Starting limit, between `floor` and `ceiling`. Default `200` (clamped to them). */
  initial?: number;
  /** Latency beyond `tolerance × baseline` counts as load. Default `2`. */
  tolerance?: number;
  /** Share of the burst only `normal` fallbacks may take. Default `0.5`. */
  reserve?: number;
  /** Default `systemClock`. */
  clock?: Clock;
  /** The event-loop delay to subtract from statement latencies. Default: none (0). */
  loopDelay?: LoopDelay;
}

/** How often the limit is reconsidered: four verdicts a second, fast enough to cut within one. */
const WINDOW_MS = 250;
/** Fewer statements than this in a window say nothing about latency: the window goes on... */
const MIN_SAMPLES = 5;
/** A window that fallbacks press on is judged once it is this old (and has its samples). */
const EARLY_WINDOW_MS = 50;
/** ...up to this long, then closes holding the limit. */
const MAX_WINDOW_MS = 2_000;
/** The bucket holds this many seconds of the limit, as the fixed defaults do (400 for 200/s). */
const BURST_SECONDS = 2;
/** Growth per window: the larger of √limit and this share of the limit... */
const INCREASE_SHARE = 0.1;
/**
 * ...or this factor while the latency is less than half-way from the baseline to the strain
 * threshold: a primary that shows no sign of the load yet can take more at once (TCP's slow
 * start, Gradient2's headroom), and a lag spike needs its fallbacks now. Overshoot is cut
 * within a window of strain.
 */
const FAST_INCREASE = 1.5;
/** A cut keeps 70 % of the limit: halved within two windows, a quarter left within one second. */
const DECREASE = 0.7;
/** The baseline moves half-way to a faster window... */
const BASELINE_FALL = 0.5;
/** ...and towards a slower one with this time constant... */
const BASELINE_RISE_MS = 30_000;
/** ...ten times more slowly when the window was itself strained, so that load does not become the norm. */
const STRAINED_RISE_SLOWDOWN = 10;
/** Latency differences below this are noise (scheduling, GC), not load. */
const SLACK_MS = 1;
/** One statement counts at most this many times the strain threshold (a slow report is not load). */
const OUTLIER_FACTOR = 8;
/**
 * Latencies are kept per window in log-spaced buckets (4 a doubling, from 10 µs to ~5 min),
 * count and sum each: the outlier cap depends on the window's loop delay, known only when the
 * window closes.
 */
const BUCKET_MIN_MS = 0.01;
const BUCKETS_PER_DOUBLING = 4;
const BUCKETS = 100;
/** A take that leaves less than this share of the burst shows that fallbacks want the limit. */
const DEMAND_LOW_WATER = 0.25;
/**
 * Fallbacks in flight at most: the limit times this many seconds (Little's law: `limit` a
 * second that take 100 ms each keep `limit × 100 ms` in flight), at least 1. A fallback is a
 * read that a replica would have answered in a few milliseconds; the cap binds only when
 * fallbacks take longer than this on average, or come faster than the primary answers them
 * (the first instant of a lag spike, which the bucket's burst would otherwise send at once).
 * A fallback beyond the cap waits for a slot as long (100 ms), then is shed.
 */
const IN_FLIGHT_SECONDS = 0.1;

const noLoopDelay: LoopDelay = { take: () => 0 };

/** A fallback waiting for a slot. */
interface SlotWaiter {
  resolve: (granted: boolean) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A primary budget whose rate follows what the primary's statements show: the token bucket of
 * `PrimaryBudget`, with the same fairness reserve, whose refill rate (the limit; burst
 * `2 s × limit`) moves between `floor` and `ceiling` — additive increase, multiplicative
 * decrease, as TCP and adaptive concurrency limiters do (Netflix concurrency-limits, Envoy).
 *
 * The data layer reports every statement it runs on the primary ({@link observe}: writes,
 * strong reads and fallbacks alike — all of them load the primary; only fallbacks are limited).
 * Every 250 ms window, judged lazily on the next call (no timer):
 *
 * - The window's **latency** is the mean latency of its statements minus the mean event-loop
 *   delay of the window: a statement timed in-process includes the time the process kept its
 *   answer waiting, and a busy process must not read as a busy primary. The mean (not a
 *   percentile) because only means subtract; one statement counts at most 8 × the threshold,
 *   so that one slow report does not look like load.
 * - The **baseline** is the primary's usual latency: it falls half-way to a faster window and
 *   rises with a 30 s time constant (300 s from strained windows), so that a primary under
 *   load does not teach it that slow is normal. It falls only on windows where the loop delay
 *   is smaller than the latency left (or under 1 ms): subtracting a large delay could show a
 *   latency the primary never had.
 * - **Decrease** (× 0.7, and the bucket keeps at most one window of the new limit or the burst at the floor, whichever is more) when a primary statement failed for the node's sake (`error`,
 *   `timeout`), when the primary pool's queue did not empty in two windows running and did not
 *   shrink, or when the mean latency exceeds `tolerance × (baseline + loop delay) + 1 ms` —
 *   the loop delay enters multiplied by the tolerance too, since its estimate is rough.
 * - **Increase** when the latency held and the limit was in demand (a fallback was refused, or a
 *   take left less than a quarter of the burst): by √limit or 10 %, whichever is more, and by
 *   half (× 1.5) when that is more and the mean latency is less than half-way from the
 *   baseline to the strain threshold (the primary shows no sign of the load: 200 to 5000/s within
 *   a second of heavy demand). The bucket gains the burst the raise adds (2 s × the increase), so that the onset
 *   of a lag storm is not shed while the limit climbs. Without demand the limit holds: an
 *   unused limit proves nothing about the primary.
 * - Fewer than 5 statements in a window judge nothing: the window goes on, up to 2 s. A
 *   window in which fallbacks press on the limit (a take left less than a quarter of the
 *   burst) is judged early, once 50 ms old: demand that outruns the limit meets a decision in
 *   tens of milliseconds.
 * - **In flight**: beside the rate, at most `limit × 100 ms` fallbacks (at least 1) are in
 *   flight, for a data layer that asks for a slot ({@link enter}) and reports the end
 *   ({@link release}); the rest wait for a slot in arrival order, `normal` ones first, up to
 *   100 ms, then are shed. `low` ones take at most the share above the reserve. The primary
 *   sees the spike's burst as fast as it answers it, never all at once.
 *
 * @example
 * ```ts
 * const budget = new AdaptiveBudget({ floor: 20, ceiling: 2000 });
 * const start = performance.now();
 * await primary.query(sql); // every statement on the primary, also writes
 * budget.observe(performance.now() - start, 'ok');
 * if (budget.tryTake('low')) { // a primary fallback for an anonymous read
 * }
 * budget.status().limit; // fallbacks per second now
 * ```
 */
export class AdaptiveBudget implements FallbackBudget {
  readonly floor: number;
  readonly ceiling: number;
  readonly tolerance: number;
  /** Share of the burst only `normal` fallbacks may take. */
  readonly reserve: number;
  readonly #clock: Clock;
  readonly #loopDelay: LoopDelay;
  readonly #bucket: TokenBucket;
  #windowStart: number;
  #count = 0;
  readonly #bucketCounts = new Float64Array(BUCKETS);
  readonly #bucketSums = new Float64Array(BUCKETS);
  #failures = 0;
  #queueMin = Number.POSITIVE_INFINITY;
  #previousQueue = 0;
  #samples = 0;
  #baseline: number | null = null;
  #latency: number | null = null;
  #loopDelayMs: number | null = null;
  #loopUtilization: number | null = null;
  #lastChange: BudgetChange | null = null;
  #inFlight = 0;
  /** Whether the data layer asks for slots ({@link enter}): `inFlight` means something. */
  #slotsUsed = false;
  readonly #waiting: { normal: SlotWaiter[]; low: SlotWaiter[] } = { normal: [], low: [] };

  /** @internal The engine builds the budget from its `budget` option. */
  constructor(options: AdaptiveBudgetOptions = {}) {
    const given = options.ceiling;
    // A ceiling below the default floor brings the floor down with it.
    const floor =
      options.floor ??
      (typeof given === 'number' && given > 0
        ? Math.min(DEFAULT_BUDGET_FLOOR, given)
        : DEFAULT_BUDGET_FLOOR);
    if (typeof floor !== 'number' || !(floor > 0) || !Number.isFinite(floor)) {
      throw new ConfigError(
        'budget.floor',
        `expected a number of fallbacks per second > 0, got ${String(floor)}`,
      );
    }
    const ceiling = options.ceiling ?? Math.max(DEFAULT_BUDGET_CEILING, floor);
    if (typeof ceiling !== 'number' || !(ceiling >= floor) || !Number.isFinite(ceiling)) {
      throw new ConfigError(
        'budget.ceiling',
        `expected a finite number of fallbacks per second >= floor (${floor}), got ${String(ceiling)} (budget: false removes the limit)`,
      );
    }
    const initial = options.initial ?? Math.min(ceiling, Math.max(floor, DEFAULT_BUDGET_INITIAL));
    if (typeof initial !== 'number' || !(initial >= floor && initial <= ceiling)) {
      throw new ConfigError(
        'budget.initial',
        `expected a number from floor (${floor}) to ceiling (${ceiling}), got ${String(initial)}`,
      );
    }
    const tolerance = options.tolerance ?? DEFAULT_BUDGET_TOLERANCE;
    if (typeof tolerance !== 'number' || !(tolerance > 1) || !Number.isFinite(tolerance)) {
      throw new ConfigError(
        'budget.tolerance',
        `expected a latency ratio > 1 (2: twice the usual latency), got ${String(tolerance)}`,
      );
    }
    const reserve = options.reserve ?? DEFAULT_BUDGET_RESERVE;
    if (typeof reserve !== 'number' || !(reserve >= 0 && reserve < 1)) {
      throw new ConfigError(
        'budget.reserve',
        `expected a share of the burst from 0 to below 1, got ${String(reserve)}`,
      );
    }
    this.floor = floor;
    this.ceiling = ceiling;
    this.tolerance = tolerance;
    this.reserve = reserve;
    this.#clock = options.clock ?? systemClock;
    this.#loopDelay = options.loopDelay ?? noLoopDelay;
    const burst = burstOf(initial);
    this.#bucket = new TokenBucket(initial, burst, Math.floor(burst * reserve), this.#clock);
    this.#bucket.lowWater = burst * DEMAND_LOW_WATER;
    this.#windowStart = this.#clock.now();
  }

  /** Primary fallbacks per second now. */
  get limit(): number {
    this.#tick();
    return this.#bucket.rate;
  }

  /** Takes one token if available (for `low`, one above the reserve). */
  tryTake(priority: BudgetPriority = 'normal'): boolean {
    this.#tick();
    const taken = this.#bucket.tryTake(priority);
    if (this.#bucket.pressed) this.#judgeEarly();
    return taken;
  }

  /**
   * Asks for a slot for an admitted fallback's statement, before it is sent: `true` at once
   * while fewer than `limit × 100 ms` fallbacks are in flight (for `low`, fewer than the share
   * above the reserve), else a promise that settles when one ends — `true` — or after 100 ms
   * — `false`: the fallback is shed (counted in `shed`). Every `true` must be followed by one
   * {@link release} when the statement ends, answered or failed.
   */
  enter(priority: BudgetPriority = 'normal'): true | Promise<boolean> {
    this.#tick();
    this.#slotsUsed = true;
    const waiting = this.#waiting;
    // Waiters of the same or a higher priority go first.
    const ahead = waiting.normal.length + (priority === 'low' ? waiting.low.length : 0);
    if (ahead === 0 && this.#inFlight < this.#capFor(priority)) {
      this.#inFlight++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const queue = waiting[priority];
      const waiter: SlotWaiter = { resolve, timer: undefined };
      waiter.timer = setTimeout(() => {
        // Statements that ended while this process was busy are reported in the poll phase,
        // after the timers: give them that turn before shedding.
        setImmediate(() => {
          const i = queue.indexOf(waiter);
          if (i < 0) return;
          queue.splice(i, 1);
          this.#bucket.refuse(priority);
          resolve(false);
        });
      }, IN_FLIGHT_SECONDS * 1000);
      queue.push(waiter);
    });
  }

  /** Reports that the statement of a fallback that got a slot ({@link enter}) ended. */
  release(): void {
    if (this.#inFlight > 0) this.#inFlight--;
    for (const priority of ['normal', 'low'] as const) {
      const queue = this.#waiting[priority];
      while (queue.length > 0 && this.#inFlight < this.#capFor(priority)) {
        const waiter = queue.shift() as SlotWaiter;
        clearTimeout(waiter.timer);
        this.#inFlight++;
        waiter.resolve(true);
      }
    }
  }

  /** Tokens currently available (fractional). */
  available(): number {
    this.#tick();
    return this.#bucket.available();
  }

  /** Milliseconds until the next whole token, 0 when one is available. */
  msUntilNext(): number {
    this.#tick();
    return this.#bucket.msUntilNext();
  }

  /**
   * Reports one statement run on the primary: every one, not only fallbacks. Cheap enough
   * for every statement (no allocation).
   *
   * @param latencyMs - from sending the statement to its answer, as the process saw it.
   * @param queued - callers waiting for a primary pool connection when it ended (`pool.waitingCount`).
   */
  observe(latencyMs: number, outcome: PrimaryOutcome, queued = 0): void {
    this.#tick();
    this.#samples++;
    if (queued < this.#queueMin) this.#queueMin = queued;
    if (outcome !== 'ok') {
      this.#failures++;
      return;
    }
    if (!(latencyMs >= 0)) return;
    this.#count++;
    const i = bucketOf(latencyMs);
    this.#bucketCounts[i] = (this.#bucketCounts[i] as number) + 1;
    this.#bucketSums[i] = (this.#bucketSums[i] as number) + latencyMs;
  }

  /** The limit, its bounds, the counters and what the last window measured and decided. */
  status(): BudgetStatus {
    this.#tick();
    return {
      ...bucketStatus(this.#bucket, 'adaptive'),
      floor: this.floor,
      ceiling: this.ceiling,
      tolerance: this.tolerance,
      samples: this.#samples,
      baselineMs: this.#baseline,
      latencyMs: this.#latency,
      loopDelayMs: this.#loopDelayMs,
      loopUtilization: this.#loopUtilization,
      lastChange: this.#lastChange,
      inFlight: this.#slotsUsed ? this.#inFlight : null,
      maxInFlight: this.#maxInFlight(),
    };
  }

  #maxInFlight(): number {
    return Math.max(1, Math.ceil(this.#bucket.rate * IN_FLIGHT_SECONDS));
  }

  /** Slots `priority` may fill: all of them, or for `low` the share above the reserve. */
  #capFor(priority: BudgetPriority): number {
    const max = this.#maxInFlight();
    return priority === 'low' ? Math.max(1, max - Math.floor(max * this.reserve)) : max;
  }

  /**
   * Judges the window now, before its end, when fallbacks press on the limit and the window
   * already shows how the primary answers: the onset of a lag storm (demand jumping from none
   * to hundreds a second) is met within tens of milliseconds, raised or cut, not a quarter
   * second later with the bucket long dry.
   */
  #judgeEarly(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#windowStart;
    if (elapsed >= EARLY_WINDOW_MS && this.#count >= MIN_SAMPLES) this.#closeWindow(now, elapsed);
  }

  #tick(): void {
    this.#loopDelay.wake?.();
    const now = this.#clock.now();
    const elapsed = now - this.#windowStart;
    if (elapsed >= WINDOW_MS) this.#closeWindow(now, elapsed);
    else if (elapsed < 0) this.#windowStart = now; // the wall clock went back
  }

  #closeWindow(now: number, elapsed: number): void {
    const count = this.#count;
    const failures = this.#failures;
    if (count < MIN_SAMPLES && failures === 0 && elapsed < MAX_WINDOW_MS) return;
    const loopDelay = this.#loopDelay.take();
    const busy = this.#loopDelay.utilization?.() ?? null;
    const queue = this.#queueMin === Number.POSITIVE_INFINITY ? 0 : this.#queueMin;
    const queueStuck = queue > 0 && this.#previousQueue > 0 && queue >= this.#previousQueue;

    let strained = false;
    let roomy = false;
    if (count >= MIN_SAMPLES) {
      const known = this.#baseline;
      const cap =
        known === null
          ? Number.POSITIVE_INFINITY
          : OUTLIER_FACTOR * (this.tolerance * (known + loopDelay) + SLACK_MS);
      const mean = this.#cappedSum(cap) / count;
      const latency = Math.max(0, mean - loopDelay);
      const baseline = known ?? latency;
      strained = mean > this.tolerance * (baseline + loopDelay) + SLACK_MS;
      roomy = mean <= ((1 + this.tolerance) / 2) * (baseline + loopDelay) + SLACK_MS;
      this.#latency = latency;
      this.#baseline = nextBaseline(
        baseline,
        latency,
        loopDelay,
        strained || failures > 0 || queueStuck,
        elapsed,
      );
    }

    const rate = this.#bucket.rate;
    let change: BudgetChange['change'] = 'decrease';
    let reason: BudgetChange['reason'];
    if (failures > 0) reason = 'failures';
    else if (queueStuck) reason = 'queue';
    else if (strained) reason = 'latency';
    else {
      change = 'hold';
      if (count < MIN_SAMPLES) reason = 'few-samples';
      else if (!this.#bucket.pressed) reason = 'no-demand';
      else {
        change = 'increase';
        reason = 'within-tolerance';
      }
    }
    const additive = rate + Math.max(Math.sqrt(rate), rate * INCREASE_SHARE);
    const next =
      change === 'decrease'
        ? rate * DECREASE
        : change === 'increase'
          ? roomy
            ? Math.max(rate * FAST_INCREASE, additive)
            : additive
          : rate;
    if (next !== rate) {
      const limit = Math.min(this.ceiling, Math.max(this.floor, next));
      const burst = burstOf(limit);
      const grownBy = burst - this.#bucket.burst;
      this.#bucket.resize(limit, burst, Math.floor(burst * this.reserve));
      this.#bucket.lowWater = burst * DEMAND_LOW_WATER;
      // A raise comes with its share of burst: demand that drained the bucket earned it, and
      // the onset of a lag storm (demand jumping from none to hundreds a second) would
      // otherwise be shed while the primary has room, until the refill rate catches up. The
      // fallbacks in flight stay capped, so the primary still sees them as fast as it answers.
      if (change === 'increase' && grownBy > 0) this.#bucket.credit(grownBy);
      // A cut takes back the burst too: the primary is loaded now, and a full bucket would
      // let twice the new limit through at once. One window's worth is left, never less than
      // the burst at the floor (at the default floor: the fixed budget's).
      if (change === 'decrease')
        this.#bucket.cap(Math.max((limit * WINDOW_MS) / 1000, burstOf(this.floor)));
    }

    this.#loopDelayMs = loopDelay;
    this.#loopUtilization = busy;
    this.#lastChange = { change, reason, at: now };
    this.#previousQueue = queue;
    this.#count = 0;
    this.#bucketCounts.fill(0);
    this.#bucketSums.fill(0);
    this.#failures = 0;
    this.#queueMin = Number.POSITIVE_INFINITY;
    this.#bucket.pressed = false;
    this.#windowStart = now;
  }

  /** The window's latencies summed with each counted at most `cap`. */
  #cappedSum(cap: number): number {
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const n = this.#bucketCounts[i] as number;
      if (n === 0) continue;
      // Within the bucket that holds the cap, at most every sample is at the cap.
      sum += Math.min(this.#bucketSums[i] as number, n * cap);
    }
    return sum;
  }
}

function bucketOf(latencyMs: number): number {
  if (latencyMs <= BUCKET_MIN_MS) return 0;
  const i = Math.floor(Math.log2(latencyMs / BUCKET_MIN_MS) * BUCKETS_PER_DOUBLING);
  return i < BUCKETS ? i : BUCKETS - 1;
}

function burstOf(limit: number): number {
  return Math.max(1, BURST_SECONDS * limit);
}

function nextBaseline(
  baseline: number,
  latency: number,
  loopDelay: number,
  strained: boolean,
  elapsed: number,
): number {
  if (latency < baseline) {
    return loopDelay <= Math.max(latency, SLACK_MS)
      ? baseline + (latency - baseline) * BASELINE_FALL
      : baseline;
  }
  // A window that stayed open through a quiet spell stands for at most its longest span.
  const rise =
    Math.min(elapsed, MAX_WINDOW_MS) / BASELINE_RISE_MS / (strained ? STRAINED_RISE_SLOWDOWN : 1);
  return baseline + (latency - baseline) * rise;
}
