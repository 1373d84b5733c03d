import type { Decision } from '@freshgate/core';

/** Routed reads and fallbacks since start-up, for the status page. */
export class Counters {
  readonly routes: Record<string, { primary: number; replica: number }> = {};
  readonly fallbacks: Record<string, number> = {};
  /**
   * Degraded paths taken: barriers by cause (store down, hint without a token, a token ahead of
   * this instance, a replica lost mid-request) and barrier reads a replica served.
   */
  readonly degraded: Record<string, number> = {};
  budgetExhausted = 0;

  /** The engine's `telemetry.onDecision` hook. */
  readonly onDecision = (decision: Decision, _span: unknown, contract: string): void => {
    if (decision.kind === 'primary' || decision.kind === 'replica') {
      this.routes[contract] ??= { primary: 0, replica: 0 };
      this.routes[contract][decision.kind]++;
    }
    if (decision.fallback !== null && decision.kind !== 'check') {
      const key = `${decision.fallback}: ${decision.reason}`;
      this.fallbacks[key] = (this.fallbacks[key] ?? 0) + 1;
    }
    if (decision.kind === 'barrier') this.#count(`barrier: ${decision.reason}`);
    else if (decision.reason === 'barrier-caught-up')
      this.#count('served by a replica at the barrier');
    if (decision.budgetExhausted) this.budgetExhausted++;
  };

  #count(key: string): void {
    this.degraded[key] = (this.degraded[key] ?? 0) + 1;
  }

  toJSON() {
    return {
      routes: this.routes,
      fallbacks: this.fallbacks,
      degraded: this.degraded,
      budgetExhausted: this.budgetExhausted,
    };
  }
}
