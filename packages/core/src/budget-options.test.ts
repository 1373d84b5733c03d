import { describe, expect, it } from 'vitest';
import { AdaptiveBudget } from './adaptive-budget.js';
import { PrimaryBudget } from './budget.js';
import { createEngine, type EngineOptions } from './engine.js';
import { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';
import { Topology } from './topology.js';

const SECRET = 'budget-options-test-secret-long-enough';

function engine(budget: EngineOptions['budget'], clock = new ManualClock(0)) {
  return createEngine({ topology: new Topology({ clock }), secret: SECRET, clock, budget });
}

async function optionError(budget: unknown): Promise<string | null> {
  try {
    await engine(budget as EngineOptions['budget']);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return `${(error as ConfigError).option}: ${(error as Error).message}`;
  }
}

describe('createEngine: the budget option', () => {
  it('is the adaptive limit by default, starting at 200/s with a burst of 400', async () => {
    for (const budget of [undefined, {}, { reserve: 0.3 }, { floor: 10, ceiling: 900 }]) {
      const e = await engine(budget);
      expect(e.budget).toBeInstanceOf(AdaptiveBudget);
      expect(e.budgetStatus()).toMatchObject({ mode: 'adaptive', limit: 200, burst: 400 });
    }
    expect((await engine({ floor: 10, ceiling: 900 })).budgetStatus()).toMatchObject({
      floor: 10,
      ceiling: 900,
      tolerance: 2,
    });
  });

  it('{ rate, burst?, reserve? } keeps the fixed bucket; false removes the limit', async () => {
    const fixed = await engine({ rate: 10, burst: 5 });
    expect(fixed.budget).toBeInstanceOf(PrimaryBudget);
    expect(fixed.budgetStatus()).toMatchObject({
      mode: 'fixed',
      limit: 10,
      burst: 5,
      baselineMs: null,
    });
    // A burst alone meant the fixed bucket before: it still does.
    expect((await engine({ burst: 50 } as never)).budgetStatus()).toMatchObject({
      mode: 'fixed',
      limit: 200,
      burst: 50,
    });
    const off = await engine(false);
    expect(off.budget).toBeNull();
    expect(off.budgetStatus()).toMatchObject({ mode: 'off', limit: null, burst: null });
  });

  it('rejects a fixed rate mixed with adaptive bounds, and every bad value, naming the option', async () => {
    expect(await optionError({ rate: 100, floor: 10 })).toMatch(
      /^budget\.floor: .*cannot be combined with `rate`/,
    );
    expect(await optionError({ burst: 100, tolerance: 3 })).toMatch(/^budget\.tolerance: /);
    expect(await optionError({ floor: -1 })).toMatch(/^budget\.floor: /);
    expect(await optionError({ floor: 100, ceiling: 10 })).toMatch(
      /^budget\.ceiling: .*floor \(100\)/,
    );
    expect(await optionError({ initial: 10_000 })).toMatch(/^budget\.initial: /);
    expect(await optionError({ tolerance: 0.5 })).toMatch(/^budget\.tolerance: /);
    expect(await optionError({ reserve: 2 })).toMatch(/^budget\.reserve: /);
    expect(await optionError({ rate: 0 })).toMatch(/^budget\.rate: /);
    expect(await optionError({ tolerence: 2 })).toMatch(
      /^budget\.tolerence: .*Did you mean "tolerance"/,
    );
    expect(await optionError({ cieling: 2 })).toMatch(/Did you mean "ceiling"/);
    expect(await optionError(null)).toMatch(/^budget: /);
    expect(await optionError({ floor: 20, ceiling: 2_000, initial: 100 })).toBeNull();
  });

  it('feeds the statements the data layer reports to the adaptive budget, not to a fixed one', async () => {
    const clock = new ManualClock(0);
    const adaptive = await engine(undefined, clock);
    const fixed = await engine({ rate: 100 }, clock);
    for (let ms = 0; ms < 300; ms++) {
      clock.advance(1);
      adaptive.observePrimary(3, 'ok', 0);
      fixed.observePrimary(3, 'ok', 0);
    }
    expect(adaptive.budgetStatus()).toMatchObject({
      samples: 300,
      baselineMs: 3,
      latencyMs: 3,
      loopDelayMs: 0,
      lastChange: { change: 'hold', reason: 'no-demand' },
    });
    expect(fixed.budgetStatus()).toMatchObject({ samples: 0, baselineMs: null });
  });

  it('start() and close() are idempotent, whatever the budget', async () => {
    for (const budget of [undefined, { rate: 10 }, false] as const) {
      const e = await engine(budget);
      e.start();
      e.start();
      e.close();
      e.close();
      e.start();
      e.close();
    }
  });
});
