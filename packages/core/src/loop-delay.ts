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
  /**
   * The budget saw a request: a source that samples on a timer keeps doing so for a while,
   * and may rest while nothing calls this.
   */
  wake?(): void;
}

/** Sampling interval of {@link EventLoopDelay}, ms. */
const RESOLUTION_MS = 10;

/** How long {@link EventLoopDelay} samples after the last {@link LoopDelay.wake}, ms. */
const AWAKE_MS = 1_000;

/**
 * The process's event-loop delay: a timer every 10 ms (unreferenced: it never keeps the
 * process alive) measures how late it runs, by the clock, so that a long synchronous stretch
 * counts in full. (`perf_hooks.monitorEventLoopDelay()` was measured to miss such stretches:
 * a 300 ms block left its maximum at 20 ms.) Also reads the loop's utilization. Measures only
 * between `start()` and `stop()`; `take()` answers 0 otherwise. The timer runs only within a
 * second of the last `wake()` (the budget wakes it as it sees requests): an idle process is
 * not woken 100 times a second for a figure nobody reads. Internal: the engine owns one and
 * starts and stops it with itself.
 */
export class EventLoopDelay implements LoopDelay {
  // One timer, re-armed with refresh(): no timer object per tick.
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;
  #woken = false;
  #wokenAt = 0;
  #last = 0;
  #sum = 0;
  #count = 0;
  #elu: EventLoopUtilization | null = null;

  /** Whether the timer runs: started, and woken within the last second. */
  get sampling(): boolean {
    return this.#sampling;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setTimeout(this.#tick, RESOLUTION_MS);
    this.#timer.unref?.();
    this.#sampling = true;
    this.#last = performance.now();
    this.#wokenAt = this.#last;
  }

  wake(): void {
    this.#woken = true;
    if (this.#sampling || this.#timer === undefined) return;
    this.#sampling = true;
    this.#last = performance.now();
    this.#wokenAt = this.#last;
    this.#timer.refresh();
  }

  readonly #tick = (): void => {
    const now = performance.now();
    this.#sum += Math.max(0, now - this.#last - RESOLUTION_MS);
    this.#count++;
    this.#last = now;
    if (this.#woken) {
      this.#woken = false;
      this.#wokenAt = now;
    } else if (now - this.#wokenAt >= AWAKE_MS) {
      this.#sampling = false;
      return;
    }
    this.#timer?.refresh();
  };

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
    this.#sampling = false;
    this.#elu = null;
    this.#sum = 0;
    this.#count = 0;
  }

  take(): number {
    if (this.#timer === undefined || this.#count === 0) return 0;
    // A stretch the timer has not run after yet counts too (while it runs).
    const pending = this.#sampling
      ? Math.max(0, performance.now() - this.#last - RESOLUTION_MS)
      : 0;
    const delay = (this.#sum + pending) / (this.#count + (pending > 0 ? 1 : 0));
    this.#sum = 0;
    this.#count = 0;
    return delay;
  }
}
