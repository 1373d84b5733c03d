import { describe, expect, it } from 'vitest';
import { PrimaryBudget } from './budget.js';
import { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';

describe('PrimaryBudget', () => {
  it('allows a burst, then refuses until time refills it', () => {
    const clock = new ManualClock();
    const budget = new PrimaryBudget({ rate: 10, burst: 5, clock });
    const burst = Array.from({ length: 8 }, () => budget.tryTake());
    expect(burst).toEqual([true, true, true, true, true, false, false, false]);
    expect(budget.msUntilNext()).toBeCloseTo(100);
    clock.advance(99);
    expect(budget.tryTake()).toBe(false);
    clock.advance(1);
    expect(budget.tryTake()).toBe(true);
    expect(budget.tryTake()).toBe(false);
  });

  it('sustains exactly the configured rate under a continuous stampede', () => {
    const clock = new ManualClock();
    const budget = new PrimaryBudget({ rate: 50, burst: 10, clock });
    let granted = 0;
    // 1000 attempts per second for 10 seconds.
    for (let ms = 0; ms < 10_000; ms++) {
      if (budget.tryTake()) granted++;
      clock.advance(1);
    }
    expect(granted).toBe(10 + 50 * 10 - 1);
  });

  it('never stores more than the burst during a quiet period', () => {
    const clock = new ManualClock();
    const budget = new PrimaryBudget({ rate: 100, burst: 3, clock });
    clock.advance(60_000);
    expect(budget.available()).toBe(3);
    expect([budget.tryTake(), budget.tryTake(), budget.tryTake(), budget.tryTake()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('with an infinite rate never refuses', () => {
    const budget = new PrimaryBudget({
      rate: Number.POSITIVE_INFINITY,
      burst: 1,
      clock: new ManualClock(),
    });
    for (let i = 0; i < 1000; i++) expect(budget.tryTake()).toBe(true);
  });

  it('rejects invalid settings naming the option', () => {
    expect(() => new PrimaryBudget({ rate: 0 })).toThrow(ConfigError);
    expect(() => new PrimaryBudget({ burst: 0.5 })).toThrow(/budget\.burst/);
  });
});
