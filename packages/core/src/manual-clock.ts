import type { Clock } from './clock.js';

/**
 * A {@link Clock} that only moves when told to: tests advance time instead of sleeping.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(0);
 * clock.advance(1500);
 * clock.now(); // 1500
 * ```
 */
export class ManualClock implements Clock {
  #now: number;

  /** @param start - initial time in ms since the epoch; defaults to 2025-01-01. */
  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` (never backwards). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('ManualClock only moves forward');
    this.#now += ms;
  }

  /** Sets the time; only forward moves are allowed. */
  set(now: number): void {
    this.advance(now - this.#now);
  }
}
