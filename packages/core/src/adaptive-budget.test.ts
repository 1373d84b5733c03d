import { describe, expect, it } from 'vitest';
import { AdaptiveBudget, type AdaptiveBudgetOptions } from './adaptive-budget.js';
import { defineContract } from './contract.js';
import { type DecideContext, decide, routeRequest } from './decide.js';
import { createEngine } from './engine.js';
import { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';
import { Topology } from './topology.js';

const WINDOW = 250;

function setup(options: AdaptiveBudgetOptions = {}) {
  const clock = new ManualClock(0);
  const budget = new AdaptiveBudget({ window: WINDOW, clock, ...options });
  return { clock, budget };
}

/**
 * One measurement window: `use` fallbacks in flight (capped by the limit), `samples` primary
 * statements of `latencyMs` (and `waitMs` in the pool queue), then the window ends.
 */
function step(
  { clock, budget }: ReturnType<typeof setup>,
  latencyMs: number,
  { use = Number.POSITIVE_INFINITY, samples = 20, waitMs = 0, failed = false } = {},
): void {
  let taken = 0;
  while (taken < use && budget.tryTake()) taken++;
  for (let i = 0; i < samples; i++)
    budget.observe({ latencyMs, waitMs, queued: waitMs > 0, failed: failed && i === 0 });
  for (let i = 0; i < taken; i++) budget.release();
  clock.advance(WINDOW);
}

function steady(s: ReturnType<typeof setup>, latencyMs: number, windows: number, use?: number) {
  for (let i = 0; i < windows; i++) step(s, latencyMs, { use });
}

describe('AdaptiveBudget', () => {
  it('grows while the primary keeps its latency and the limit is in use, up to the ceiling', () => {
    const s = setup({ initial: 10, max: 60 });
    steady(s, 2, 1);
    expect(s.budget.snapshot().baselineMs).toBe(2);
    const limits: number[] = [];
    for (let i = 0; i < 40; i++) {
      step(s, 2 + (i % 3) * 0.3);
      limits.push(s.budget.limit);
    }
    expect(limits[0]).toBeGreaterThan(10);
    for (let i = 1; i < limits.length; i++)
      expect(limits[i]).toBeGreaterThanOrEqual(limits[i - 1] as number);
    expect(Math.max(...limits)).toBe(60);
  });

  it('does not grow a limit nobody uses: idle capacity says nothing about headroom', () => {
    const s = setup({ initial: 20 });
    steady(s, 2, 30, 3);
    expect(s.budget.limit).toBe(20);
  });

  it('shrinks fast when latency rises past tolerance, never below the floor', () => {
    const s = setup({ initial: 100, min: 5, max: 100, tolerance: 1.5 });
    steady(s, 2, 20);
    expect(s.budget.limit).toBe(100);
    // 4× the baseline against a tolerance of 1.5: the largest cut (a half), smoothed: ×0.75.
    step(s, 8);
    expect(s.budget.limit).toBe(75);
    step(s, 8);
    step(s, 8);
    expect(s.budget.limit).toBeLessThanOrEqual(50);
    // 2× the baseline: towards a cut of tolerance / 2 = 0.75, smoothed: ×0.875.
    const before = s.budget.limit;
    step(s, 4);
    expect(s.budget.limit).toBeLessThan(before);
    expect(s.budget.limit).toBeGreaterThanOrEqual(Math.floor(before * 0.875));
    steady(s, 8, 10);
    expect(s.budget.limit).toBe(5);
  });

  it('one window with slow outliers does not cut the limit (fast quartile)', () => {
    const s = setup({ initial: 64, max: 64 });
    steady(s, 2, 10);
    // A few outliers (a GC pause) in a window of fast statements: the median ignores them.
    s.budget.tryTake();
    for (let i = 0; i < 20; i++)
      s.budget.observe({ latencyMs: i < 5 ? 200 : 2, waitMs: 0, queued: false, failed: false });
    s.clock.advance(WINDOW);
    expect(s.budget.limit).toBe(64);
  });

  it('does not shrink for latency within tolerance', () => {
    const s = setup({ initial: 40, max: 40, tolerance: 2 });
    steady(s, 2, 10);
    steady(s, 3.8, 10);
    expect(s.budget.limit).toBe(40);
  });

  it('halves when statements queue for a primary connection, whatever their latency', () => {
    const s = setup({ initial: 64, max: 64 });
    steady(s, 2, 10);
    step(s, 2, { waitMs: 6 });
    expect(s.budget.limit).toBe(32);
  });

  it('a few statements queueing in a window is a busy moment, not a saturated pool', () => {
    const s = setup({ initial: 64, max: 64 });
    steady(s, 2, 10);
    s.budget.tryTake();
    for (let i = 0; i < 20; i++)
      s.budget.observe({ latencyMs: 2, waitMs: i < 4 ? 50 : 0, queued: i < 4, failed: false });
    s.clock.advance(WINDOW);
    expect(s.budget.limit).toBe(64);
  });

  it('halves on a failed or timed-out primary statement', () => {
    const s = setup({ initial: 64, max: 64 });
    steady(s, 2, 10);
    step(s, 2, { failed: true });
    expect(s.budget.limit).toBe(32);
  });

  it('recovers once the primary is fast again, without a slow spell raising the baseline', () => {
    const s = setup({ initial: 40, min: 4, max: 40 });
    steady(s, 2, 10);
    steady(s, 10, 40);
    expect(s.budget.limit).toBe(4);
    expect(s.budget.snapshot().baselineMs as number).toBeLessThan(2.5);
    steady(s, 2, 60);
    expect(s.budget.limit).toBe(40);
  });

  it('admits up to the limit, refuses the rest, and counts both', () => {
    const s = setup({ initial: 8, min: 8 });
    const taken = Array.from({ length: 12 }, () => s.budget.tryTake());
    expect(taken.filter(Boolean)).toHaveLength(8);
    expect(s.budget.msUntilNext()).toBe(1000);
    s.budget.release();
    expect(s.budget.tryTake()).toBe(true);
    expect(s.budget.snapshot()).toMatchObject({
      mode: 'adaptive',
      limit: 8,
      inFlight: 8,
      admitted: 9,
      shed: 4,
    });
  });

  it('keeps the reserve for requests with a token or session key: low priority only below it', () => {
    const s = setup({ initial: 10, min: 10, reserve: 0.4 });
    let low = 0;
    while (s.budget.tryTake('low')) low++;
    expect(low).toBe(6);
    let normal = 0;
    while (s.budget.tryTake('normal')) normal++;
    expect(normal).toBe(4);
  });

  it('forgets an admission never released after a minute, so a lost release cannot block fallbacks', () => {
    const s = setup({ initial: 4, min: 4, max: 4 });
    for (let i = 0; i < 4; i++) expect(s.budget.tryTake()).toBe(true);
    expect(s.budget.tryTake()).toBe(false);
    s.clock.advance(61_000);
    expect(s.budget.tryTake()).toBe(true);
    expect(s.budget.inFlight).toBe(1);
  });

  it('rejects bad settings naming the option', () => {
    expect(() => new AdaptiveBudget({ min: 0 })).toThrow(/budget\.min/);
    expect(() => new AdaptiveBudget({ min: 10, max: 5 })).toThrow(/budget\.max/);
    expect(() => new AdaptiveBudget({ tolerance: 0.9 })).toThrow(/budget\.tolerance/);
    expect(() => new AdaptiveBudget({ reserve: 1 })).toThrow(ConfigError);
  });
});

describe('AdaptiveBudget in decisions', () => {
  function context() {
    const clock = new ManualClock(10_000);
    const topology = new Topology({ replicas: [], clock });
    topology.updatePrimary({ currentLsn: 500n, clusterId: 'c/1', health: 'healthy' });
    const budget = new AdaptiveBudget({ initial: 2, min: 2, max: 2, clock });
    const ctx: DecideContext = { topology, budget, selection: 'least-lag', cursor: { next: 0 } };
    return { budget, ctx };
  }

  it('never refuses writes, transactions, locking or strong reads, even with the limit reached', () => {
    const { budget, ctx } = context();
    const ryw = defineContract('read-your-writes');
    expect(decide(routeRequest(ryw), ctx)).toMatchObject({ kind: 'primary', fallback: 'primary' });
    expect(decide(routeRequest(ryw), ctx)).toMatchObject({ kind: 'primary', fallback: 'primary' });
    expect(budget.inFlight).toBe(2);
    // The next fallback is shed with a Retry-After.
    expect(decide(routeRequest(ryw), ctx)).toMatchObject({
      kind: 'error',
      budgetExhausted: true,
      retryAfterSeconds: 1,
    });
    for (const fields of [{ wrote: true }, { inTransaction: true }, { locking: true }]) {
      expect(decide(routeRequest(ryw, fields), ctx)).toMatchObject({
        kind: 'primary',
        budgetExhausted: false,
      });
    }
    expect(decide(routeRequest(defineContract('strong')), ctx)).toMatchObject({
      kind: 'primary',
      reason: 'strong',
    });
    expect(budget.inFlight).toBe(2);
  });
});

describe('createEngine: budget option', () => {
  const secret = 'engine-test-secret-that-is-long-enough!!';

  it('is adaptive by default; rate/burst or mode fixed keep the token bucket; false turns it off', async () => {
    const topology = new Topology();
    expect((await createEngine({ topology, secret })).budget?.mode).toBe('adaptive');
    const fixed = await createEngine({ topology, secret, budget: { rate: 50, burst: 10 } });
    expect(fixed.budget?.snapshot()).toMatchObject({ mode: 'fixed', min: 50, max: 10 });
    expect((await createEngine({ topology, secret, budget: { mode: 'fixed' } })).budget?.mode).toBe(
      'fixed',
    );
    const adaptive = await createEngine({
      topology,
      secret,
      budget: { min: 2, max: 50, tolerance: 2, window: '100ms', baseline: '10s' },
    });
    expect(adaptive.budget?.snapshot()).toMatchObject({ mode: 'adaptive', min: 2, max: 50 });
    expect((await createEngine({ topology, secret, budget: false })).budget).toBeNull();
  });

  it('names a misspelt or misplaced option', async () => {
    const topology = new Topology();
    await expect(
      createEngine({ topology, secret, budget: { tolerence: 2 } as never }),
    ).rejects.toThrow(/`budget.tolerence`.*Did you mean "tolerance"/);
    await expect(
      createEngine({ topology, secret, budget: { mode: 'fixed', min: 2 } as never }),
    ).rejects.toThrow(/budget\.min/);
    await expect(
      createEngine({ topology, secret, budget: { mode: 'gradient' } as never }),
    ).rejects.toThrow(/budget\.mode/);
  });
});
