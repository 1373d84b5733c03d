import type { Clock } from '@freshgate/core';

/**
 * A read whose answer is shared by every caller that needs one sent after a given moment (a
 * node's WAL position, say): at most one read is in flight and one queued behind it, so a
 * flood of callers costs one read per round trip, whatever its size.
 *
 * @example
 * ```ts
 * const position = new SharedRead(() => readPosition(), systemClock);
 * const { value } = position.after(clock.now()); // sent now or later, maybe for others too
 * ```
 */
export class SharedRead<T> {
  readonly #run: () => Promise<T>;
  readonly #clock: Clock;
  #current: Promise<T> | null = null;
  #currentSentAt = Number.NEGATIVE_INFINITY;
  #queued: Promise<T> | null = null;

  constructor(run: () => Promise<T>, clock: Clock) {
    this.#run = run;
    this.#clock = clock;
  }

  /**
   * An answer read by a statement sent at or after clock time `since`. `shared`: the read was
   * started for another caller (in flight, or queued by one).
   */
  after(since: number): { value: Promise<T>; shared: boolean } {
    if (this.#current !== null && this.#currentSentAt >= since) {
      return { value: this.#current, shared: true };
    }
    if (this.#queued !== null) return { value: this.#queued, shared: true };
    if (this.#current === null) return { value: this.#start(), shared: false };
    // The read in flight was sent before `since`: the next one starts when it ends.
    const queued = this.#current.then(
      () => this.#next(),
      () => this.#next(),
    );
    this.#queued = queued;
    return { value: queued, shared: false };
  }

  #next(): Promise<T> {
    this.#queued = null;
    return this.#start();
  }

  #start(): Promise<T> {
    const sentAt = this.#clock.now();
    const running = this.#run();
    this.#current = running;
    this.#currentSentAt = sentAt;
    const done = () => {
      if (this.#current === running) this.#current = null;
    };
    running.then(done, done);
    return running;
  }
}
