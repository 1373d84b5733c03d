import {
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  performance,
} from 'node:perf_hooks';

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
  /**
   * Share of the time (0 to 1) the event loop was busy since the previous call, 0 when
   * unknown. A loop busy all the time keeps its backlog in its sockets, where no timer sees
   * it: the delay above then understates what the process adds to a statement's latency.
   */
  utilization?(): number;
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
  #elu: EventLoopUtilization | null = null;

  start(): void {
    if (this.#histogram !== null) return;
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
    this.#elu = performance.eventLoopUtilization();
  }

  utilization(): number {
    if (this.#elu === null) return 0;
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, this.#elu);
    this.#elu = now;
    return since.utilization;
  }

  stop(): void {
    this.#histogram?.disable();
    this.#histogram = null;
    this.#elu = null;
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
