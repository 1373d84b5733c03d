import type { Decision } from '@freshgate/core';

/** Routed reads and fallbacks since start-up, for the status page. */
export class Counters {
  readonly routes: Record<string, { primary: number; replica: number }> = {};
  readonly fallbacks: Record<string, number> = {};
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
    if (decision.budgetExhausted) this.budgetExhausted++;
  };

  toJSON() {
    return {
      routes: this.routes,
      fallbacks: this.fallbacks,
      budgetExhausted: this.budgetExhausted,
    };
  }
}
