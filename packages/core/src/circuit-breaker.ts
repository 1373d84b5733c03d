import { checkOptions } from './check-options.js';
import { type Clock, systemClock } from './clock.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError } from './errors.js';
import type { CircuitState } from './topology.js';

/**
 * Settings of a {@link CircuitBreaker}. Each user of a breaker (the replica monitor, the Redis
 * pin store) documents and defines its own defaults, once: they differ on purpose.
 */
export interface CircuitBreakerSettings {
  /** Consecutive failures that open the circuit. */
  failureThreshold?: number;
  /** Open time before a half-open probe. */
  open?: Duration;
  /** Cap of the open time, which doubles after each failed probe. */
  maxOpen?: Duration;
  /** Called on every state change; a throwing listener is ignored. */
  onChange?: (from: CircuitState, to: CircuitState) => void;
}

/** Options of {@link CircuitBreaker}: the user's settings over the owner's defaults. */
export interface CircuitBreakerOptions {
  defaults: Required<Omit<CircuitBreakerSettings, 'onChange'>>;
  /** The user's settings, checked here; `path` names them in errors (`monitor.breaker.`). */
  settings?: CircuitBreakerSettings | undefined;
  path?: string;
  clock?: Clock;
}

const SETTINGS = ['failureThreshold', 'open', 'maxOpen', 'onChange'];

/**
 * A circuit breaker for one dependency (a database node, the pin store): `closed` lets calls
 * through; after `failureThreshold` consecutive failures it is `open` and refuses them
 * without trying; after the open time one caller is let through `half-open` as a probe, and
 * its outcome closes the circuit or opens it again for twice as long.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({
 *   defaults: { failureThreshold: 1, open: '500ms', maxOpen: '5s' },
 *   settings: userOptions.breaker,
 *   path: 'breaker.',
 * });
 * if (breaker.allow()) {
 *   try { await call(); breaker.success(); } catch (err) { breaker.failure(); }
 * }
 * ```
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #lastFailureAt = Number.NEGATIVE_INFINITY;
  #openUntil = 0;
  #openMs: number;
  #probing = false;
  readonly #threshold: number;
  readonly #baseOpenMs: number;
  readonly #maxOpenMs: number;
  readonly #clock: Clock;
  readonly #onChange: ((from: CircuitState, to: CircuitState) => void) | undefined;

  constructor({ defaults, settings = {}, path = '', clock }: CircuitBreakerOptions) {
    checkOptions(settings, SETTINGS, `${path}options`, path);
    const threshold = settings.failureThreshold ?? defaults.failureThreshold;
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new ConfigError(
        `${path}failureThreshold`,
        `expected an integer >= 1, got ${String(threshold)}`,
      );
    }
    this.#threshold = threshold;
    this.#baseOpenMs = parseDuration(settings.open ?? defaults.open, `${path}open`);
    if (this.#baseOpenMs < 1) throw new ConfigError(`${path}open`, 'must be at least 1ms');
    const maxOpenMs = parseDuration(settings.maxOpen ?? defaults.maxOpen, `${path}maxOpen`);
    if (settings.maxOpen !== undefined && maxOpenMs < this.#baseOpenMs) {
      throw new ConfigError(
        `${path}maxOpen`,
        `must be >= ${path}open (${this.#baseOpenMs}ms), got ${maxOpenMs}ms`,
      );
    }
    this.#maxOpenMs = Math.max(this.#baseOpenMs, maxOpenMs);
    if (settings.onChange !== undefined && typeof settings.onChange !== 'function') {
      throw new ConfigError(`${path}onChange`, 'expected a function (from, to) => void');
    }
    this.#openMs = this.#baseOpenMs;
    this.#clock = clock ?? systemClock;
    this.#onChange = settings.onChange;
  }

  /** The state as of now (an open circuit whose time is up reads `half-open`). */
  get state(): CircuitState {
    if (this.#state === 'open' && this.#clock.now() >= this.#openUntil) return 'half-open';
    return this.#state;
  }

  /**
   * Whether a call may go through now. In `half-open` only one probe is let through until
   * its outcome is reported.
   */
  allow(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.#clock.now() < this.#openUntil) return false;
      this.#set('half-open');
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** Reports a successful call: closes the circuit. */
  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#openMs = this.#baseOpenMs;
    this.#set('closed');
  }

  /**
   * Reports a failed call: opens the circuit after enough failures, or after a failed probe.
   *
   * `startedAt` (the clock's time when the call was sent) makes failures count once per
   * event: a call sent before the last counted failure was already in flight when it
   * happened, so its failure is the same outage (or the same stall of this process, which
   * times out every call in flight at once) and is not counted again.
   */
  failure(startedAt?: number): void {
    if (startedAt !== undefined && startedAt < this.#lastFailureAt) return;
    this.#lastFailureAt = this.#clock.now();
    this.#failures++;
    const probeFailed = this.#state === 'half-open';
    this.#probing = false;
    if (probeFailed) {
      this.#openMs = Math.min(this.#openMs * 2, this.#maxOpenMs);
      this.#open();
    } else if (this.#state === 'closed' && this.#failures >= this.#threshold) {
      this.#open();
    }
  }

  #open(): void {
    this.#openUntil = this.#clock.now() + this.#openMs;
    this.#set('open');
  }

  #set(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    try {
      this.#onChange?.(from, to);
    } catch {
      // a listener must not change the breaker's behaviour
    }
  }
}
