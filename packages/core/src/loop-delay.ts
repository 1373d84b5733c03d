import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Where the adaptive budget learns how long this process's event loop held callbacks back:
 * a statement timed from inside the process includes that wait, and a busy process must not
 * read it as a slow primary. Inject one in tests to make the budget deterministic.
 *
 * @example
 * ```ts
 * const loopDelay: LoopDelay = { take: () => 0 }; // a process that never waits
 * const budget = new AdaptiveBudget({ clock, loopDelay });
 * ```
 */
export interface LoopDelay {
  /** Mean event-loop delay (ms) since the previous call, 0 when unknown; starts a new interval. */
  take(): number;
}

/** Sampling interval of {@link EventLoopDelay}, ms (Node's default). */
const RESOLUTION_MS = 10;

/**
 * The process's event-loop delay, from `perf_hooks.monitorEventLoopDelay()`: a timer every
 * 10 ms (unreferenced: it never keeps the process alive) whose lateness is the delay. Measures
 * only between `start()` and `stop()`; `take()` answers 0 otherwise. Internal: the engine owns
 * one and starts and stops it with itself.
 */
export class EventLoopDelay implements LoopDelay {
  #histogram: IntervalHistogram | null = null;

  start(): void {
    if (this.#histogram !== null) return;
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
  }

  stop(): void {
    this.#histogram?.disable();
    this.#histogram = null;
  }

  take(): number {
    const histogram = this.#histogram;
    if (histogram === null || histogram.count === 0) return 0;
    // The histogram holds the intervals between the timer's runs: the delay is what exceeds
    // the interval asked for.
    const delay = histogram.mean / 1e6 - RESOLUTION_MS;
    histogram.reset();
    return Math.max(delay, 0);
  }
}
