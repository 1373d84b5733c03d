import { describe, expect, it } from 'vitest';
import { PrimaryBudget } from './budget.js';
import { defineContract } from './contract.js';
import { type DecideContext, decide, routeRequest } from './decide.js';
import { ManualClock } from './manual-clock.js';
import { Topology } from './topology.js';

describe('PrimaryBudget: a budget nobody can drain for others', () => {
  it('low-priority takes stop at the reserve; normal ones get the reserve', () => {
    const clock = new ManualClock(0);
    const budget = new PrimaryBudget({ rate: 100, burst: 40, reserve: 0.5, clock });
    let low = 0;
    while (budget.tryTake('low')) low++;
    expect(low).toBe(20);
    let normal = 0;
    while (budget.tryTake('normal')) normal++;
    expect(normal).toBe(20);
  });

  it('under a continuous low-priority flood, normal traffic still gets its whole demand up to the rate', () => {
    // Measured: 10 s in 1 ms steps; the flood asks 5 times per ms, users once every 10 ms.
    const clock = new ManualClock(0);
    const budget = new PrimaryBudget({ rate: 200, burst: 400, clock });
    let userAsked = 0;
    let userGot = 0;
    let floodGot = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      clock.advance(1);
      for (let i = 0; i < 5; i++) if (budget.tryTake('low')) floodGot++;
      if (ms % 10 === 0) {
        userAsked++;
        if (budget.tryTake('normal')) userGot++;
      }
    }
    expect(userGot).toBe(userAsked);
    // The flood keeps what users leave: the burst above the reserve plus the rest of the rate.
    expect(floodGot).toBeGreaterThan(1_100);
    expect(floodGot + userGot).toBeLessThanOrEqual(400 + 200 * 10);
  });

  it('first come, first served would starve users: the same flood with no reserve takes everything', () => {
    const clock = new ManualClock(0);
    const budget = new PrimaryBudget({ rate: 200, burst: 400, reserve: 0, clock });
    let userGot = 0;
    for (let ms = 0; ms < 2_000; ms++) {
      clock.advance(1);
      for (let i = 0; i < 5; i++) budget.tryTake('low');
      if (ms % 10 === 0 && budget.tryTake('normal')) userGot++;
    }
    // 200 asks: without the reserve almost all of them find the bucket empty.
    expect(userGot).toBeLessThan(20);
  });

  it('rejects a reserve outside [0, 1)', () => {
    expect(() => new PrimaryBudget({ reserve: 1 })).toThrow(/budget.reserve/);
    expect(() => new PrimaryBudget({ reserve: -0.1 })).toThrow(/budget.reserve/);
  });
});

describe('decide: budget priority of fallbacks', () => {
  function setup() {
    const clock = new ManualClock(10_000);
    const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
    topology.updatePrimary({ currentLsn: 500n, clusterId: 'c/1', health: 'healthy' });
    topology.updateReplica('r1', {
      replayLsn: 100n,
      lagMs: 900,
      clusterId: 'c/1',
      health: 'healthy',
    });
    const budget = new PrimaryBudget({ rate: 1, burst: 4, reserve: 0.5, clock });
    const ctx: DecideContext = { topology, budget, selection: 'least-lag', cursor: { next: 0 } };
    return { ctx, budget };
  }
  const ryw = defineContract('read-your-writes');

  it('anonymous barrier reads (hint-no-lsn) drain only down to the reserve; a token-bearing read still gets the primary', () => {
    const { ctx } = setup();
    const anonymous = () =>
      decide(
        routeRequest(ryw, {
          anonymous: true,
          readAfterWrite: true,
          requiredLsn: 500n,
          barrierLsn: 500n,
          barrierCause: 'hint-no-lsn',
          checkAllowed: false,
        }),
        ctx,
      );
    expect(anonymous()).toMatchObject({ kind: 'primary', reason: 'hint-no-lsn' });
    expect(anonymous()).toMatchObject({ kind: 'primary', reason: 'hint-no-lsn' });
    expect(anonymous()).toMatchObject({
      kind: 'error',
      reason: 'hint-no-lsn',
      budgetExhausted: true,
    });
    const user = decide(routeRequest(ryw, { requiredLsn: 400n, checkAllowed: false }), ctx);
    expect(user).toMatchObject({ kind: 'primary', reason: 'no-replica-caught-up' });
  });

  it('a token the primary has not reached uses the low priority', () => {
    const { ctx, budget } = setup();
    budget.tryTake();
    budget.tryTake();
    const future = routeRequest(ryw, { requiredLsn: 900n, barrierLsn: 500n });
    expect(decide(future, ctx)).toMatchObject({ kind: 'error', reason: 'future-lsn' });
    expect(budget.available()).toBe(2);
  });
});
