import { describe, expect, it, vi } from 'vitest';
import {
  AdaptiveBudget,
  type AdaptiveBudgetOptions,
  type PrimaryOutcome,
} from './adaptive-budget.js';
import { ConfigError } from './errors.js';
import type { LoopDelay } from './loop-delay.js';
import { ManualClock } from './manual-clock.js';

/** A loop-delay source the test sets: what the process's event loop is doing. */
class FakeLoopDelay implements LoopDelay {
  ms = 0;
  busy = 0;
  take(): number {
    return this.ms;
  }
  utilization(): number {
    return this.busy;
  }
}

interface Traffic {
  /** Statements on the primary per second (writes and reads), each taking `latencyMs`. */
  statements?: number;
  latencyMs?: number;
  outcome?: PrimaryOutcome;
  queued?: number;
  /** Primary fallbacks asked for per second. */
  fallbacks?: number;
  priority?: 'normal' | 'low';
}

function setup(options: AdaptiveBudgetOptions = {}) {
  const clock = new ManualClock(0);
  const loopDelay = new FakeLoopDelay();
  // The unit tests run with a floor of 50 (the default, 200, is the fixed rate).
  const budget = new AdaptiveBudget({ clock, loopDelay, floor: 50, ...options });
  /** Runs `traffic` for `ms` in 1 ms steps; returns the fallbacks admitted. */
  const run = (ms: number, traffic: Traffic) => {
    const { statements = 400, latencyMs = 1, outcome = 'ok', queued = 0, fallbacks = 0 } = traffic;
    let statementDebt = 0;
    let fallbackDebt = 0;
    let admitted = 0;
    for (let t = 0; t < ms; t++) {
      clock.advance(1);
      statementDebt += statements / 1000;
      for (; statementDebt >= 1; statementDebt--) budget.observe(latencyMs, outcome, queued);
      fallbackDebt += fallbacks / 1000;
      for (; fallbackDebt >= 1; fallbackDebt--)
        if (budget.tryTake(traffic.priority ?? 'normal')) admitted++;
    }
    return admitted;
  };
  return { clock, loopDelay, budget, run };
}

describe('AdaptiveBudget', () => {
  it('wakes its loop-delay source whenever it is asked or told something', () => {
    let wakes = 0;
    const loopDelay: LoopDelay = { take: () => 0, wake: () => wakes++ };
    const budget = new AdaptiveBudget({ clock: new ManualClock(0), loopDelay });
    budget.tryTake();
    budget.observe(1, 'ok');
    budget.status();
    expect(wakes).toBe(3);
  });

  it('starts where the fixed default is: 200/s, a burst of 400, half of it reserved', () => {
    const { budget } = setup();
    expect(budget.status()).toMatchObject({
      mode: 'adaptive',
      limit: 200,
      burst: 400,
      available: 400,
      floor: 50,
      ceiling: 5000,
      tolerance: 2,
      baselineMs: null,
      lastChange: null,
    });
    let low = 0;
    while (budget.tryTake('low')) low++;
    expect(low).toBe(200);
  });

  it('grows while the primary latency holds and fallbacks want more than the limit', () => {
    const { budget, run } = setup();
    run(1_000, {});
    expect(budget.limit).toBe(200);
    const limits: number[] = [budget.limit];
    // The latency shows no sign of the load, so the limit grows by half a judged window (a
    // window the fallbacks press on is judged early, at 50 ms).
    for (let w = 0; w < 4; w++) {
      run(250, { fallbacks: 3_000 });
      limits.push(budget.limit);
    }
    // Until the limit meets the demand (3000/s, with a burst of 2 s × the limit).
    for (let w = 1; w < 4; w++)
      expect(limits[w]).toBeGreaterThanOrEqual(1.5 * (limits[w - 1] as number));
    // Admissions follow the limit: more than the 200/s a fixed rate would give.
    expect(run(1_000, { fallbacks: 3_000 })).toBeGreaterThan(1_000);
  });

  it('a raise brings its burst: the onset of a lag storm on a primary with room is not shed', () => {
    const { budget, run } = setup();
    run(1_000, {});
    // Demand jumps from none to 900 fallbacks a second, as when both replicas fall behind.
    const first = run(1_000, { fallbacks: 900 });
    expect(budget.status().shed.normal).toBe(0);
    expect(first).toBeGreaterThan(890);
    // The raise credited what it added to the burst (2 s × the increase), never past it.
    const { available, burst } = budget.status();
    expect(available).toBeLessThanOrEqual(burst as number);
  });

  it('grows by √limit or 10 % when the latency held but came closer to the threshold than half-way', () => {
    const { budget, run } = setup();
    run(5_000, { latencyMs: 2 });
    // Threshold 2 × 2 + 1 = 5 ms; half-way 1.5 × 2 + 1 = 4 ms.
    // Enough demand to press on the limit within the window's first 50 ms: judged once.
    run(60, { latencyMs: 4.5, fallbacks: 8_000 });
    expect(budget.limit).toBeCloseTo(220); // 10 % of 200 is more than √200
    expect(budget.status().lastChange).toMatchObject({ change: 'increase' });
  });

  it('reaches the ceiling from the default within a second of heavy demand on a primary with room, and stops there', () => {
    const { budget, run } = setup();
    run(200, { fallbacks: 10_000 });
    expect(budget.limit).toBeLessThan(5_000);
    run(800, { fallbacks: 10_000 });
    expect(budget.limit).toBe(5_000);
    expect(budget.status().burst).toBe(10_000);
  });

  it('does not grow without demand: a limit nobody uses proves nothing about the primary', () => {
    const { budget, run } = setup();
    run(10_000, { fallbacks: 50 });
    expect(budget.limit).toBe(200);
    expect(budget.status().lastChange).toMatchObject({ change: 'hold', reason: 'no-demand' });
    expect(budget.status().admitted).toEqual({ normal: 500, low: 0 });
  });

  it('shrinks fast when latency exceeds tolerance × baseline: × 0.7 a window, to the floor within a second', () => {
    const { budget, run } = setup();
    run(5_000, { latencyMs: 2 });
    expect(budget.status().baselineMs).toBeCloseTo(2);
    run(250, { latencyMs: 8 });
    expect(budget.limit).toBeCloseTo(140);
    expect(budget.status().latencyMs).toBeCloseTo(8, 0);
    expect(budget.status().lastChange).toMatchObject({ change: 'decrease', reason: 'latency' });
    run(750, { latencyMs: 8 });
    expect(budget.limit).toBe(50);
    // The baseline did not learn the strained latency.
    expect(budget.status().baselineMs).toBeLessThan(2.1);
  });

  it('a cut takes back the burst: a full bucket does not let a stampede through a loaded primary', () => {
    const { budget, run } = setup();
    run(5_000, { latencyMs: 2 });
    expect(budget.available()).toBe(400);
    run(250, { latencyMs: 8 });
    expect(budget.limit).toBeCloseTo(140);
    // The burst at the floor (50/s: 100) is left, not the 280 a full bucket at 140/s would hold.
    expect(budget.available()).toBeCloseTo(100, 0);
    // What was left plus one window of refill (without the cut: 280 + 35).
    expect(run(250, { latencyMs: 8, fallbacks: 2_000 })).toBeLessThanOrEqual(135);
  });

  it('latency within tolerance × baseline + 1 ms is not load; beyond it is', () => {
    const { budget, run } = setup();
    run(5_000, { latencyMs: 0.2 });
    run(1_000, { latencyMs: 1.3, fallbacks: 1_000 }); // under 2 × 0.2 + 1
    expect(budget.limit).toBeGreaterThan(200);
    expect(budget.status().lastChange?.change).toBe('increase');
    run(250, { latencyMs: 2 });
    expect(budget.status().lastChange).toMatchObject({ change: 'decrease', reason: 'latency' });
  });

  it('shrinks on errors and timeouts whatever the latency', () => {
    for (const outcome of ['error', 'timeout'] as const) {
      const { budget, run } = setup();
      run(1_000, {});
      run(300, { statements: 40, outcome });
      expect(budget.limit).toBeCloseTo(140);
      expect(budget.status().lastChange).toMatchObject({ change: 'decrease', reason: 'failures' });
    }
  });

  it('shrinks when the primary pool queue does not drain, not when it empties', () => {
    const { budget, run } = setup();
    run(1_000, { queued: 3 }); // the queue never empties: from the second window on, each cuts
    expect(budget.status().lastChange?.reason).toBe('queue');
    expect(budget.limit).toBeCloseTo(200 * 0.7 ** 3);
    const after = budget.limit;
    run(1_000, { queued: 0, fallbacks: 1_000 });
    expect(budget.limit).toBeGreaterThan(after);
    const { budget: other, run: runOther } = setup();
    runOther(250, { queued: 2 });
    expect(other.limit).toBe(200);
    runOther(250, { queued: 1 }); // shrinking: draining
    expect(other.limit).toBe(200);
  });

  it('never leaves [floor, ceiling]', () => {
    const { budget, run } = setup({ floor: 20, ceiling: 300, initial: 100 });
    run(5_000, { outcome: 'error' });
    expect(budget.limit).toBe(20);
    expect(budget.status().burst).toBe(40);
    run(30_000, { fallbacks: 5_000 });
    expect(budget.limit).toBe(300);
  });

  it('a busy event loop with an idle primary does not shrink it (the loop delay is subtracted)', () => {
    const { budget, loopDelay, run } = setup();
    run(5_000, { latencyMs: 0.5 });
    // The process is saturated: every answer waits ~20 ms for the loop, the primary is idle.
    loopDelay.ms = 20;
    run(5_000, { latencyMs: 22, fallbacks: 1_000 });
    expect(budget.limit).toBeGreaterThan(200);
    expect(budget.status().loopDelayMs).toBe(20);
    expect(budget.status().latencyMs).toBeCloseTo(2);
    // Grown to what the fallbacks ask for (then held: no more demand).
    expect(budget.status().lastChange?.change).not.toBe('decrease');
    expect(budget.limit).toBeGreaterThanOrEqual(1_000);
    // The rough estimate cannot teach the baseline a latency the primary never had.
    expect(budget.status().baselineMs).toBeGreaterThanOrEqual(0.5);
  });

  it('the same latencies without the loop delay known would shrink it: the compensation is what holds it', () => {
    const { budget, run } = setup();
    run(5_000, { latencyMs: 0.5 });
    run(1_000, { latencyMs: 22, fallbacks: 1_000 });
    expect(budget.limit).toBe(50);
  });

  it('reports how busy the event loop was in the last window', () => {
    const { budget, loopDelay, run } = setup();
    loopDelay.busy = 0.95;
    run(1_000, { latencyMs: 2 });
    expect(budget.status().loopUtilization).toBe(0.95);
  });

  it('a primary slower beyond the loop delay still shrinks it', () => {
    const { budget, loopDelay, run } = setup();
    run(5_000, { latencyMs: 0.5 });
    loopDelay.ms = 20;
    run(300, { latencyMs: 60 }); // > 2 × (0.5 + 20) + 1
    expect(budget.status().lastChange).toMatchObject({ change: 'decrease', reason: 'latency' });
  });

  it('one slow statement among many is not load (it counts at most 8 × the threshold)', () => {
    const { budget, clock, run } = setup();
    run(5_000, { latencyMs: 1 });
    clock.advance(1);
    budget.observe(5_000, 'ok');
    run(250, { latencyMs: 1, fallbacks: 2_000 });
    expect(budget.status().lastChange).toMatchObject({ change: 'increase' });
  });

  it('too few statements judge nothing: the window goes on, then holds after 2 s', () => {
    const { budget, run } = setup();
    run(1_000, { statements: 2, latencyMs: 100 });
    expect(budget.status().lastChange).toBeNull();
    run(1_000, { statements: 2, latencyMs: 100, fallbacks: 1_000 });
    expect(budget.status().lastChange).toMatchObject({ change: 'hold', reason: 'few-samples' });
    expect(budget.limit).toBe(200);
  });

  it('keeps the fairness reserve at every limit: low-priority takes stop at half the burst', () => {
    const { budget, run } = setup();
    run(5_000, { fallbacks: 3_000 });
    expect(budget.limit).toBeGreaterThan(300);
    run(5_000, {}); // refills the bucket; without demand the limit holds
    const { burst, available, shed } = budget.status() as {
      burst: number;
      available: number;
      shed: { normal: number; low: number };
    };
    expect(available).toBe(burst);
    let low = 0;
    while (budget.tryTake('low')) low++;
    let normal = 0;
    while (budget.tryTake('normal')) normal++;
    expect(low).toBe(Math.floor(burst - Math.floor(burst / 2)));
    expect(low + normal).toBe(Math.floor(burst));
    expect(budget.status().shed).toEqual({ normal: shed.normal + 1, low: shed.low + 1 });
  });

  it('under a low-priority flood, normal fallbacks still get their whole demand', () => {
    const { budget, clock } = setup();
    let userAsked = 0;
    let userGot = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      clock.advance(1);
      budget.observe(1, 'ok');
      for (let i = 0; i < 5; i++) budget.tryTake('low');
      if (ms % 10 === 0) {
        userAsked++;
        if (budget.tryTake('normal')) userGot++;
      }
    }
    expect(userGot).toBe(userAsked);
  });

  it('caps fallbacks in flight at limit × 100 ms: the rest wait for a slot, normal ones first', async () => {
    const { budget } = setup({ initial: 100 });
    expect(budget.status()).toMatchObject({ inFlight: null, maxInFlight: 10 });
    // 100/s × 100 ms = 10 slots.
    for (let i = 0; i < 10; i++) expect(budget.enter()).toBe(true);
    const low = budget.enter('low');
    const normal = budget.enter('normal');
    expect(low).toBeInstanceOf(Promise);
    expect(normal).toBeInstanceOf(Promise);
    expect(budget.status().inFlight).toBe(10);
    // The first slot that frees goes to the normal fallback, although the low one came first.
    let lowGot: boolean | undefined;
    void (low as Promise<boolean>).then((granted) => {
      lowGot = granted;
    });
    budget.release();
    expect(await normal).toBe(true);
    expect(budget.status().inFlight).toBe(10);
    // Anonymous traffic fills the share above the reserve only: 10 − floor(10 × 0.5) = 5.
    for (let i = 0; i < 5; i++) budget.release();
    await Promise.resolve();
    expect(lowGot).toBeUndefined();
    budget.release();
    expect(await low).toBe(true);
    expect(budget.status().inFlight).toBe(5);
    // An end reported for nothing in flight does not open more room.
    for (let i = 0; i < 10; i++) budget.release();
    expect(budget.status().inFlight).toBe(0);
  });

  it('a fallback that finds no slot within 100 ms is shed, and counted', async () => {
    vi.useFakeTimers();
    try {
      const { budget } = setup({ floor: 20, initial: 20 });
      // 20/s × 100 ms: 2 slots.
      expect(budget.enter()).toBe(true);
      expect(budget.enter()).toBe(true);
      const shed = budget.status().shed.normal;
      const waiting = budget.enter() as Promise<boolean>;
      await vi.advanceTimersByTimeAsync(99);
      await vi.advanceTimersByTimeAsync(2);
      expect(await waiting).toBe(false);
      expect(budget.status()).toMatchObject({ inFlight: 2, shed: { normal: shed + 1 } });
      // A slot freed in time is handed over instead.
      const next = budget.enter() as Promise<boolean>;
      await vi.advanceTimersByTimeAsync(50);
      budget.release();
      expect(await next).toBe(true);
      expect(budget.status().inFlight).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects bad settings naming the option', () => {
    const option = (options: AdaptiveBudgetOptions) => {
      try {
        new AdaptiveBudget(options);
        return null;
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).option;
      }
    };
    expect(option({ floor: 0 })).toBe('budget.floor');
    expect(option({ floor: Number.NaN })).toBe('budget.floor');
    expect(option({ ceiling: Number.POSITIVE_INFINITY })).toBe('budget.ceiling');
    expect(option({ floor: 100, ceiling: 50 })).toBe('budget.ceiling');
    expect(option({ initial: 10 })).toBe('budget.initial');
    expect(option({ tolerance: 1 })).toBe('budget.tolerance');
    expect(option({ tolerance: '2' as never })).toBe('budget.tolerance');
    expect(option({ reserve: 1 })).toBe('budget.reserve');
    expect(option({ floor: 10, ceiling: 100 })).toBeNull();
    // A default that falls outside the given bounds follows them.
    expect(new AdaptiveBudget({ ceiling: 100 }).limit).toBe(100);
    expect(new AdaptiveBudget({ floor: 500 }).limit).toBe(500);
  });
});
