import type { Decision } from '@freshgate/core';
import { describe, expect, it } from 'vitest';
import { Counters } from './counters.js';

const decision = (kind: 'primary' | 'replica', reason: string) =>
  ({ kind, reason, fallback: null, budgetExhausted: false }) as unknown as Decision;

describe('casebook counters per route', () => {
  it('counts each read under the route whose handler made it, across awaits and concurrent requests', async () => {
    const counters = new Counters();
    const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
    await Promise.all([
      counters.within('GET /api/cases/:id', async () => {
        await tick();
        counters.onDecision(decision('primary', 'no-replica-caught-up'), undefined, 'monotonic');
        await tick();
        counters.onDecision(decision('replica', 'replica-caught-up'), undefined, 'monotonic');
      }),
      counters.within('GET /api/search', async () => {
        counters.onDecision(decision('replica', 'eventual'), undefined, 'eventual');
        await tick();
        counters.onDecision(decision('replica', 'eventual'), undefined, 'eventual');
      }),
    ]);
    // A read outside any route (start-up seeding) counts per contract only.
    counters.onDecision(decision('primary', 'strong'), undefined, 'strong');

    expect(counters.toJSON().byRoute).toEqual({
      'GET /api/cases/:id': {
        contract: 'monotonic',
        primary: 1,
        replica: 1,
        reasons: { 'no-replica-caught-up': 1 },
      },
      'GET /api/search': { contract: 'eventual', primary: 0, replica: 2, reasons: {} },
    });
    expect(counters.routes.strong).toEqual({ primary: 1, replica: 0 });
  });
});
