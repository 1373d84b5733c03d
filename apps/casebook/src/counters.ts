import { AsyncLocalStorage } from 'node:async_hooks';
import type { Decision } from '@freshgate/core';

/** Routed reads of one route: where they went, and why the primary served the ones it did. */
export interface RouteCounts {
  contract: string;
  primary: number;
  replica: number;
  /** Primary reads by decision reason. */
  reasons: Record<string, number>;
}

/** Routed reads and fallbacks since start-up, for the status page. */
export class Counters {
  readonly routes: Record<string, { primary: number; replica: number }> = {};
  /** Per route (`GET /api/cases/:id`), filled for reads made inside {@link Counters.within}. */
  readonly byRoute: Record<string, RouteCounts> = {};
  readonly fallbacks: Record<string, number> = {};
  /**
   * Degraded paths taken: barriers by cause (store down, hint without a token, a token ahead of
   * this instance, a replica lost mid-request) and barrier reads a replica served.
   */
  readonly degraded: Record<string, number> = {};
  budgetExhausted = 0;
  // The route whose handler is running: the engine's hook knows the contract, not the route.
  readonly #route = new AsyncLocalStorage<string>();

  /** Runs a route's handler so that the reads it makes are counted under `route`. */
  within<T>(route: string, run: () => T): T {
    return this.#route.run(route, run);
  }

  /** The engine's `telemetry.onDecision` hook. */
  readonly onDecision = (decision: Decision, _span: unknown, contract: string): void => {
    if (decision.kind === 'primary' || decision.kind === 'replica') {
      this.routes[contract] ??= { primary: 0, replica: 0 };
      this.routes[contract][decision.kind]++;
      const route = this.#route.getStore();
      if (route !== undefined) {
        this.byRoute[route] ??= { contract, primary: 0, replica: 0, reasons: {} };
        const counts = this.byRoute[route];
        counts.contract = contract;
        counts[decision.kind]++;
        if (decision.kind === 'primary') {
          counts.reasons[decision.reason] = (counts.reasons[decision.reason] ?? 0) + 1;
        }
      }
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
      byRoute: this.byRoute,
      fallbacks: this.fallbacks,
      degraded: this.degraded,
      budgetExhausted: this.budgetExhausted,
    };
  }
}
