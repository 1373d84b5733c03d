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
