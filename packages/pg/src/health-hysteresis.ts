import type { Duration } from '@freshgate/core';
import { checkOptions, parseDuration } from '@freshgate/core/adapter';

/** Default lag under which a lagging replica may become healthy again. */
export const DEFAULT_ENTER_LAG_MS = 1_000;
/** Default time the lag must stay under {@link DEFAULT_ENTER_LAG_MS} before the replica is healthy again. */
export const DEFAULT_ENTER_FOR_MS = 5_000;
/** Default lag over which a healthy replica starts to count as lagging. */
export const DEFAULT_EXIT_LAG_MS = 2_000;
/** Default time the lag must stay over {@link DEFAULT_EXIT_LAG_MS} before the replica is lagging. */
export const DEFAULT_EXIT_FOR_MS = 1_000;

/** Thresholds of the health hysteresis (`monitor.health`), as durations. */
export interface HysteresisOptions {
  /** A lagging replica becomes healthy when its lag stays below this… Default `'1s'`. */
  enterLag?: Duration;
  /** …for this long. Default `'5s'`. */
  enterFor?: Duration;
  /** A healthy replica becomes lagging when its lag stays above this… Default `'2s'`. */
  exitLag?: Duration;
  /** …for this long. Default `'1s'`. */
  exitFor?: Duration;
}

const HYSTERESIS_OPTIONS = ['enterLag', 'enterFor', 'exitLag', 'exitFor'];

/**
 * Healthy/lagging judgement with separate enter and exit thresholds and durations, so that
 * a replica whose lag hovers around one threshold does not flap in and out of rotation.
 * The first observation is judged at once (a replica that starts caught up is usable at once).
 *
 * @example
 * ```ts
 * const health = new HealthHysteresis({ exitLag: '2s', exitFor: '1s' });
 * health.observe(50, now);   // 'healthy'
 * health.observe(2500, now); // still 'healthy' until the lag has stayed high for 1 s
 * ```
 */
export class HealthHysteresis {
  #state: 'healthy' | 'lagging' | undefined;
  #since: number | undefined;
  readonly #enterLagMs: number;
  readonly #enterForMs: number;
  readonly #exitLagMs: number;
  readonly #exitForMs: number;

  /** @param path - where the options sit, for error messages (`monitor.health.`). */
  constructor(options: HysteresisOptions = {}, path = '') {
    checkOptions(options, HYSTERESIS_OPTIONS, `${path}options`, path);
    this.#enterLagMs = parseDuration(options.enterLag ?? DEFAULT_ENTER_LAG_MS, `${path}enterLag`);
    this.#enterForMs = parseDuration(options.enterFor ?? DEFAULT_ENTER_FOR_MS, `${path}enterFor`);
    this.#exitLagMs = parseDuration(options.exitLag ?? DEFAULT_EXIT_LAG_MS, `${path}exitLag`);
    this.#exitForMs = parseDuration(options.exitFor ?? DEFAULT_EXIT_FOR_MS, `${path}exitFor`);
  }

  /** Feeds one lag measurement taken at `now`; returns the judgement. */
  observe(lagMs: number, now: number): 'healthy' | 'lagging' {
    if (this.#state === undefined) {
      this.#state = lagMs <= this.#exitLagMs ? 'healthy' : 'lagging';
      return this.#state;
    }
    const leaving = this.#state === 'healthy' ? lagMs > this.#exitLagMs : lagMs < this.#enterLagMs;
    if (!leaving) {
      this.#since = undefined;
      return this.#state;
    }
    this.#since ??= now;
    const needed = this.#state === 'healthy' ? this.#exitForMs : this.#enterForMs;
    if (now - this.#since >= needed) {
      this.#state = this.#state === 'healthy' ? 'lagging' : 'healthy';
      this.#since = undefined;
    }
    return this.#state;
  }

  /** Forgets the judgement: the next observation is judged at once. */
  reset(): void {
    this.#state = undefined;
    this.#since = undefined;
  }
}
