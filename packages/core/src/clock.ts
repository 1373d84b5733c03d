/**
 * Source of time for everything time-based in freshgate (budgets, token expiry, pins), so
 * that tests drive time instead of sleeping.
 *
 * @example
 * ```ts
 * const clock: Clock = { now: () => Date.now() };
 * ```
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/**
 * The wall clock (`Date.now()`).
 *
 * @example
 * ```ts
 * createEngine({ ..., clock: systemClock });
 * ```
 */
export const systemClock: Clock = { now: () => Date.now() };

/** How stale {@link coarseNow} may be, ms (more while the event loop is blocked). */
export const COARSE_CLOCK_MS = 100;

let coarse = 0;
let coarseStale = true;
let coarseTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * The wall clock read at most once per {@link COARSE_CLOCK_MS}: for checks that a late answer
 * cannot make unsafe (a cached token's expiry, say: a token only ever raises what a read
 * needs), on paths that run for every request. `Date.now()` costs a clock read each time, a
 * sizeable share of a request's own work in freshgate on a virtual machine. The timer that
 * marks the reading stale is unreferenced and armed only while the clock is read: an idle
 * process is never woken for it. Internal.
 */
export function coarseNow(): number {
  if (coarseStale) {
    coarse = Date.now();
    coarseStale = false;
    if (coarseTimer === undefined) {
      coarseTimer = setTimeout(markCoarseStale, COARSE_CLOCK_MS);
      coarseTimer.unref?.();
    } else coarseTimer.refresh();
  }
  return coarse;
}

function markCoarseStale(): void {
  coarseStale = true;
}
