import { type EventLoopUtilization, performance } from 'node:perf_hooks';

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

/** Sampling interval of {@link EventLoopDelay}, ms. */
const RESOLUTION_MS = 10;

/**
 * The process's event-loop delay: a timer every 10 ms (unreferenced: it never keeps the
 * process alive) measures how late it runs, by the clock, so that a long synchronous stretch
 * counts in full. (`perf_hooks.monitorEventLoopDelay()` was measured to miss such stretches:
 * a 300 ms block left its maximum at 20 ms.) Also reads the loop's utilization. Measures only
 * between `start()` and `stop()`; `take()` answers 0 otherwise. Internal: the engine owns one
 * and starts and stops it with itself.
 */
export class EventLoopDelay implements LoopDelay {
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #sum = 0;
  #count = 0;
  #elu: EventLoopUtilization | null = null;

  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = performance.now();
    const tick = () => {
      const now = performance.now();
      this.#sum += Math.max(0, now - this.#last - RESOLUTION_MS);
      this.#count++;
      this.#last = now;
      this.#timer = setTimeout(tick, RESOLUTION_MS);
      this.#timer.unref?.();
    };
    this.#timer = setTimeout(tick, RESOLUTION_MS);
    this.#timer.unref?.();
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
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#elu = null;
    this.#sum = 0;
    this.#count = 0;
  }

  take(): number {
    if (this.#timer === undefined || this.#count === 0) return 0;
    // A stretch the timer has not run after yet counts too.
    const pending = Math.max(0, performance.now() - this.#last - RESOLUTION_MS);
    const delay = (this.#sum + pending) / (this.#count + (pending > 0 ? 1 : 0));
    this.#sum = 0;
    this.#count = 0;
    return delay;
  }
}
