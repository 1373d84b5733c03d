import { type Clock, systemClock } from './clock.js';
import type { CircuitState } from './topology.js';

/** Default number of consecutive failures that open a circuit. */
export const DEFAULT_FAILURE_THRESHOLD = 3;
/** Default time a circuit stays open before one probe is let through (doubles per failed probe). */
export const DEFAULT_OPEN_MS = 1_000;
/** Default upper bound of the open time after repeated failed probes. */
export const DEFAULT_MAX_OPEN_MS = 30_000;

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default {@link DEFAULT_FAILURE_THRESHOLD} (3). */
  failureThreshold?: number;
  /** Open time before a half-open probe. Default {@link DEFAULT_OPEN_MS} (1 s). */
  openMs?: number;
  /** Cap of the open time, which doubles after each failed probe. Default {@link DEFAULT_MAX_OPEN_MS} (30 s). */
  maxOpenMs?: number;
  /** Called on every state change; a throwing listener is ignored. */
  onChange?: (from: CircuitState, to: CircuitState) => void;
  clock?: Clock;
}

/**
 * A circuit breaker for one dependency (a database node, the pin store): `closed` lets calls
 * through; after `failureThreshold` consecutive failures it is `open` and refuses them
 * without trying; after the open time one caller is let through `half-open` as a probe, and
 * its outcome closes the circuit or opens it again for twice as long.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 500 });
 * if (breaker.allow()) {
 *   try { await call(); breaker.success(); } catch (err) { breaker.failure(); }
 * }
 * ```
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openUntil = 0;
  #openMs: number;
  #probing = false;
  readonly #threshold: number;
  readonly #baseOpenMs: number;
  readonly #maxOpenMs: number;
  readonly #clock: Clock;
  readonly #onChange: ((from: CircuitState, to: CircuitState) => void) | undefined;

  constructor(options: CircuitBreakerOptions = {}) {
    this.#threshold = Math.max(1, options.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD);
    this.#baseOpenMs = Math.max(1, options.openMs ?? DEFAULT_OPEN_MS);
    this.#maxOpenMs = Math.max(this.#baseOpenMs, options.maxOpenMs ?? DEFAULT_MAX_OPEN_MS);
    this.#openMs = this.#baseOpenMs;
    this.#clock = options.clock ?? systemClock;
    this.#onChange = options.onChange;
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

  /** Reports a failed call: opens the circuit after enough failures, or after a failed probe. */
  failure(): void {
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
