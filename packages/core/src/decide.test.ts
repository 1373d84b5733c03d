import { describe, expect, it } from 'vitest';
import { PrimaryBudget } from './budget.js';
import { type Contract, type ContractInput, defineContract } from './contract.js';
import {
  type DecideContext,
  type Decision,
  decide,
  type RouteRequest,
  routeRequest,
  type SelectionPolicy,
} from './decide.js';
import { ManualClock } from './manual-clock.js';
import { Topology } from './topology.js';

const CID = 'c/1';
const PRIMARY_LSN = 500n;

type ReplicaSituation =
  | 'none'
  | 'caught-up'
  | 'behind'
  | 'lagging'
  | 'down'
  | 'quarantined'
  | 'future-lsn';

function setup(
  situation: ReplicaSituation,
  budgetAvailable = true,
  selection: SelectionPolicy = 'least-lag',
) {
  const clock = new ManualClock(10_000);
  const topology = new Topology({
    replicas: situation === 'none' ? [] : [{ name: 'r1' }, { name: 'r2' }],
    clock,
  });
  topology.updatePrimary({ currentLsn: PRIMARY_LSN, clusterId: CID, health: 'healthy' });
  for (const [i, r] of topology.replicas.entries()) {
    const base = { clusterId: CID, lagMs: 100 + i * 50, lagBytes: 0, health: 'healthy' as const };
    switch (situation) {
      case 'caught-up':
      case 'future-lsn':
        topology.updateReplica(r.name, { ...base, replayLsn: PRIMARY_LSN });
        break;
      case 'behind':
        topology.updateReplica(r.name, { ...base, replayLsn: 50n + BigInt(i) });
        break;
      case 'lagging':
        topology.updateReplica(r.name, {
          ...base,
          replayLsn: 50n,
          lagMs: 60_000,
          health: 'lagging',
        });
        break;
      case 'down':
        topology.updateReplica(r.name, { ...base, replayLsn: PRIMARY_LSN, health: 'down' });
        break;
      case 'quarantined':
        topology.updateReplica(r.name, { ...base, replayLsn: PRIMARY_LSN, health: 'quarantined' });
        break;
    }
  }
  clock.advance(1000);
  const budget = new PrimaryBudget({ rate: 1, burst: 1, clock });
  if (!budgetAvailable) budget.tryTake();
  const ctx: DecideContext = { topology, budget, selection, cursor: { next: 0 } };
  return { clock, topology, budget, ctx };
}

const CONTRACTS: Record<string, ContractInput> = {
  strong: 'strong',
  'read-your-writes': 'read-your-writes',
  monotonic: 'monotonic',
  causal: 'causal',
  'maxLag=1000ms': { maxLag: 1000 },
  eventual: 'eventual',
};
const SITUATIONS: ReplicaSituation[] = [
  'none',
  'caught-up',
  'behind',
  'lagging',
  'down',
  'quarantined',
  'future-lsn',
];

interface Expected {
  kind: Decision['kind'];
  reason: string;
  fallback?: string | null;
}

/** The decision table written out independently of `decide`. */
function expected(
  contract: Contract,
  situation: ReplicaSituation,
  hint: boolean,
  lsnKnown: boolean,
  budget: boolean,
  checkAllowed: boolean,
): Expected {
  const fallback = (reason: string): Expected =>
    budget
      ? { kind: 'primary', reason, fallback: 'primary' }
      : { kind: 'error', reason, fallback: 'error' };
  if (contract.level === 'strong') return { kind: 'primary', reason: 'strong', fallback: null };
  const level = hint && contract.level === 'eventual' ? 'read-your-writes' : contract.level;
  const required =
    level === 'eventual' || !lsnKnown ? null : situation === 'future-lsn' ? 1000n : 100n;
  if (level !== 'eventual') {
    // No position known yet: a fresh primary position comes first, whatever the replicas say.
    if (hint && required === null) return { kind: 'barrier', reason: 'hint-no-lsn' };
    if (situation === 'future-lsn' && required !== null)
      return { kind: 'barrier', reason: 'future-lsn' };
  }
  switch (situation) {
    case 'none':
    case 'lagging':
    case 'down':
    case 'quarantined':
      return fallback('no-healthy-replica');
    case 'caught-up':
    case 'future-lsn':
      return {
        kind: 'replica',
        reason:
          level === 'bounded'
            ? 'within-max-lag'
            : required === null
              ? 'replica-healthy'
              : 'replica-caught-up',
        fallback: null,
      };
    case 'behind':
      if (required === null) {
        return {
          kind: 'replica',
          reason: level === 'bounded' ? 'within-max-lag' : 'replica-healthy',
          fallback: null,
        };
      }
      return checkAllowed
        ? { kind: 'check', reason: 'replica-behind', fallback: null }
        : fallback('no-replica-caught-up');
  }
}

describe('decide: the decision table', () => {
  const cases: [string, ReplicaSituation, boolean, boolean, boolean, boolean][] = [];
  for (const name of Object.keys(CONTRACTS)) {
    for (const situation of SITUATIONS) {
      for (const hint of [false, true]) {
        for (const lsnKnown of [true, false]) {
          for (const budget of [true, false]) {
            for (const checkAllowed of [true, false])
              cases.push([name, situation, hint, lsnKnown, budget, checkAllowed]);
          }
        }
      }
    }
  }

  it.each(cases)(
    '%s × %s × hint=%s × lsn=%s × budget=%s × check=%s',
    (name, situation, hint, lsnKnown, budget, checkAllowed) => {
      const { ctx } = setup(situation, budget);
      const contract = defineContract(CONTRACTS[name] as ContractInput);
      const requiredLsn = lsnKnown ? (situation === 'future-lsn' ? 1000n : 100n) : null;
      const request = routeRequest(contract, { readAfterWrite: hint, requiredLsn, checkAllowed });
      const decision = decide(request, ctx);
      const want = expected(contract, situation, hint, lsnKnown, budget, checkAllowed);
      expect({ kind: decision.kind, reason: decision.reason, fallback: decision.fallback }).toEqual(
        {
          kind: want.kind,
          reason: want.reason,
          fallback: want.fallback ?? null,
        },
      );
      if (decision.kind === 'error') {
        expect(decision.budgetExhausted).toBe(true);
        expect(decision.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      }
      if (decision.kind === 'replica') {
        // Replicas chosen for a contract with an LSN have replayed it.
        const level = hint && contract.level === 'eventual' ? 'read-your-writes' : contract.level;
        if (level !== 'eventual' && requiredLsn !== null) {
          expect(decision.node.replayLsn).toBeGreaterThanOrEqual(requiredLsn);
        }
        expect(decision.node.health).toBe('healthy');
        expect(decision.stale).toBe(false);
      }
      if (decision.kind === 'check') {
        // The most advanced candidate is the one worth a round trip.
        expect(decision.node.name).toBe('r2');
        expect(decision.lsn).toBe(requiredLsn);
      }
    },
  );
});

describe('decide: rules that hold whatever the replicas say', () => {
  it('transactions, locking reads and reads after a write go to the primary, even for eventual', () => {
    const { ctx } = setup('caught-up');
    const eventual = defineContract('eventual');
    expect(decide(routeRequest(eventual, { inTransaction: true }), ctx).reason).toBe(
      'in-transaction',
    );
    expect(decide(routeRequest(eventual, { locking: true }), ctx).reason).toBe('locking-read');
    expect(decide(routeRequest(eventual, { wrote: true }), ctx).reason).toBe('after-write');
  });

  it('strong never consumes the budget and ignores every client input', () => {
    const { ctx, budget } = setup('caught-up', false);
    const d = decide(
      routeRequest(defineContract('strong'), { readAfterWrite: true, requiredLsn: 0n }),
      ctx,
    );
    expect(d).toMatchObject({ kind: 'primary', reason: 'strong', budgetExhausted: false });
    expect(budget.available()).toBeLessThan(1);
  });

  it('a primary fallback consumes one budget token', () => {
    const { ctx, budget } = setup('none');
    expect(budget.available()).toBe(1);
    decide(routeRequest(defineContract('read-your-writes'), { requiredLsn: 1n }), ctx);
    expect(budget.available()).toBe(0);
  });

  it('after a primary read the request stays on the primary (non-eventual) without using the budget', () => {
    const { ctx, budget } = setup('caught-up', false);
    const d = decide(
      routeRequest(defineContract('monotonic'), { requestOnPrimary: true, requiredLsn: 1n }),
      ctx,
    );
    expect(d).toMatchObject({ kind: 'primary', reason: 'request-on-primary' });
    expect(budget.available()).toBeLessThan(1);
    expect(
      decide(routeRequest(defineContract('eventual'), { requestOnPrimary: true }), ctx).kind,
    ).toBe('replica');
  });

  it('pinMode primary routes to the primary; a failed store asks for a barrier, or the primary without one', () => {
    const { ctx } = setup('caught-up');
    const ryw = defineContract('read-your-writes');
    expect(decide(routeRequest(ryw, { pinnedPrimary: true }), ctx).reason).toBe('pinned-primary');
    expect(decide(routeRequest(ryw, { storeUnavailable: true, startedAt: 42 }), ctx)).toMatchObject(
      { kind: 'barrier', reason: 'store-unavailable', since: 42 },
    );
    expect(
      decide(routeRequest(ryw, { storeUnavailable: true, barrierFailed: true }), ctx),
    ).toMatchObject({ kind: 'primary', reason: 'store-unavailable' });
    expect(
      decide(routeRequest(defineContract('eventual'), { storeUnavailable: true }), ctx).kind,
    ).toBe('replica');
  });

  it('without a barrier, a hint with no LSN, a failed store and a future LSN never take a stale or waiting fallback', () => {
    const staleFirst = defineContract({ contract: 'eventual', fallback: ['stale', 'error'] });
    const monotonic = defineContract({ contract: 'monotonic', fallback: [{ wait: 500 }, 'stale'] });
    const cases: [Contract, Partial<RouteRequest>, string][] = [
      [staleFirst, { readAfterWrite: true, barrierFailed: true }, 'hint-no-lsn'],
      [monotonic, { storeUnavailable: true, barrierFailed: true }, 'store-unavailable'],
      [monotonic, { requiredLsn: PRIMARY_LSN + 1n, barrierLsn: PRIMARY_LSN }, 'future-lsn'],
    ];
    for (const [contract, fields, reason] of cases) {
      const { ctx } = setup('caught-up');
      expect(decide(routeRequest(contract, fields), ctx)).toMatchObject({
        kind: 'primary',
        reason,
      });
      // The budget still protects the primary: empty, the read fails closed.
      const empty = setup('caught-up', false).ctx;
      expect(decide(routeRequest(contract, fields), empty)).toMatchObject({
        kind: 'error',
        reason,
      });
    }
  });

  it('never waits on an LSN beyond the primary position seen after the request arrived', () => {
    const { ctx } = setup('caught-up');
    const c = defineContract({
      contract: 'read-your-writes',
      fallback: [{ wait: 500 }, 'primary'],
    });
    const fields = { requiredLsn: PRIMARY_LSN + 1n, barrierLsn: PRIMARY_LSN };
    expect(decide(routeRequest(c, fields), ctx)).toMatchObject({
      kind: 'primary',
      reason: 'future-lsn',
    });
  });
});

describe('decide: fallback chains', () => {
  it('wait, then resume the chain after the wait', () => {
    const { ctx } = setup('behind');
    const c = defineContract({
      contract: 'read-your-writes',
      // biome-ignore lint/suspicious/noThenProperty: `then` is the documented fallback key; its value is never a function.
      fallback: [{ wait: 250, then: 'stale' }, 'error'],
    });
    const first = decide(routeRequest(c, { requiredLsn: 100n, checkAllowed: false }), ctx);
    expect(first).toMatchObject({
      kind: 'wait',
      timeoutMs: 250,
      lsn: 100n,
      resumeAt: 1,
      reason: 'no-replica-caught-up',
    });
    expect(first.kind === 'wait' && first.node.name).toBe('r2');
    const after = decide(
      routeRequest(c, {
        requiredLsn: 100n,
        checkAllowed: false,
        waitAllowed: false,
        fallbackFrom: 1,
      }),
      ctx,
    );
    expect(after).toMatchObject({
      kind: 'replica',
      stale: true,
      fallback: 'stale',
      reason: 'no-replica-caught-up',
    });
    expect(after.kind === 'replica' && after.node.name).toBe('r1');
    expect(after.lagMs).toBe(100);
  });

  it('skips a wait with no candidate and a stale step with no replica', () => {
    const { ctx } = setup('down');
    const c = defineContract({
      contract: 'monotonic',
      fallback: [{ wait: 250 }, 'stale', 'error'],
    });
    expect(decide(routeRequest(c, { requiredLsn: 100n }), ctx)).toMatchObject({
      kind: 'error',
      fallback: 'error',
      budgetExhausted: false,
      retryAfterSeconds: 1,
    });
  });

  it('an empty budget moves on to the next fallback', () => {
    const { ctx } = setup('lagging', false);
    const c = defineContract({ maxLag: 1000, fallback: ['primary', 'stale'] });
    expect(decide(routeRequest(c), ctx)).toMatchObject({
      kind: 'replica',
      stale: true,
      budgetExhausted: true,
      reason: 'no-healthy-replica',
    });
  });

  it('stale picks the least lagging replica, including lagging ones, never down ones', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r1', { health: 'down' });
    topology.updateReplica('r2', { health: 'lagging', lagMs: 9000 });
    const d = decide(routeRequest(defineContract({ maxLag: 10, fallback: 'stale' })), ctx);
    expect(d).toMatchObject({ kind: 'replica', stale: true, lagMs: 9000 });
  });

  it('stale never serves a replica whose lag is unknown: the answer could not say how stale it is', () => {
    const { ctx, topology } = setup('behind');
    topology.updateReplica('r1', { health: 'down' });
    topology.updateReplica('r2', { health: 'lagging', lagMs: null });
    const c = defineContract({ contract: 'read-your-writes', fallback: ['stale', 'error'] });
    const request = { requiredLsn: 100n, checkAllowed: false };
    expect(decide(routeRequest(c, request), ctx)).toMatchObject({
      kind: 'error',
      fallback: 'error',
    });
    // The request's own replica too.
    const r2 = topology.replica('r2') ?? null;
    expect(decide(routeRequest(c, { ...request, requestReplica: r2 }), ctx)).toMatchObject({
      kind: 'error',
    });
    // Measured again: served, and flagged stale.
    topology.updateReplica('r2', { lagMs: 4_000 });
    expect(decide(routeRequest(c, request), ctx)).toMatchObject({
      kind: 'replica',
      stale: true,
      lagMs: 4_000,
    });
  });

  it('bounded staleness reports lag-exceeds-max when healthy replicas are too far behind', () => {
    const { ctx } = setup('caught-up', false);
    const d = decide(routeRequest(defineContract({ maxLag: 10 })), ctx);
    expect(d).toMatchObject({ kind: 'error', reason: 'lag-exceeds-max' });
  });

  it('a lag bound counts the time since the lag was measured: a replica that replays nothing grows older', () => {
    const { ctx, topology, clock } = setup('caught-up');
    const budget = new PrimaryBudget({ rate: Number.POSITIVE_INFINITY, clock });
    const timed: DecideContext = { ...ctx, budget, clock };
    topology.updateReplica('r1', { lagMs: 50 });
    topology.updateReplica('r2', { lagMs: 5_000 });
    const c = defineContract({ maxLag: 100 });
    expect(decide(routeRequest(c), timed)).toMatchObject({
      kind: 'replica',
      route: 'replica:r1',
      reason: 'within-max-lag',
      lagMs: 50,
    });
    clock.advance(40);
    expect(decide(routeRequest(c), timed)).toMatchObject({ route: 'replica:r1', lagMs: 90 });
    clock.advance(20);
    // 50 ms measured 60 ms ago: the data may be 110 ms old.
    expect(decide(routeRequest(c), timed)).toMatchObject({
      kind: 'primary',
      reason: 'lag-exceeds-max',
    });
    // The request's own replica and a sticky one are held to the same bound.
    const r1 = topology.replica('r1') ?? null;
    expect(decide(routeRequest(c, { requestReplica: r1 }), timed)).toMatchObject({
      kind: 'primary',
    });
    const sticky = defineContract({ contract: 'monotonic' });
    expect(decide(routeRequest(sticky, { stickyRoute: 'replica:r1' }), timed)).toMatchObject({
      route: 'replica:r1',
    });
    // A stale answer says how old it may be now, and prefers the youngest data now.
    const stale = defineContract({ maxLag: 100, fallback: 'stale' });
    expect(decide(routeRequest(stale), timed)).toMatchObject({
      kind: 'replica',
      route: 'replica:r1',
      stale: true,
      lagMs: 110,
    });
    topology.updateReplica('r2', { lagMs: 105, lagAt: clock.now() });
    expect(decide(routeRequest(stale), timed)).toMatchObject({ route: 'replica:r2', lagMs: 105 });
    // Measured again: the bound starts over.
    topology.updateReplica('r1', { lagMs: 0, lagAt: clock.now() - 30 });
    expect(decide(routeRequest(c), timed)).toMatchObject({
      route: 'replica:r1',
      stale: false,
      lagMs: 30,
    });
  });

  it('without a clock, a lag bound compares the lag as measured', () => {
    const { ctx, topology, clock } = setup('caught-up');
    topology.updateReplica('r1', { lagMs: 50 });
    topology.updateReplica('r2', { lagMs: 5_000 });
    clock.advance(60_000);
    expect(decide(routeRequest(defineContract({ maxLag: 100 })), ctx)).toMatchObject({
      route: 'replica:r1',
      lagMs: 50,
    });
  });

  it('retry-after follows the budget refill time when the budget is the cause', () => {
    const clock = new ManualClock();
    const topology = new Topology({ clock });
    const budget = new PrimaryBudget({ rate: 0.25, burst: 1, clock });
    budget.tryTake();
    const d = decide(routeRequest(defineContract('read-your-writes')), {
      topology,
      budget,
      selection: 'least-lag',
      cursor: { next: 0 },
    });
    expect(d).toMatchObject({ kind: 'error', retryAfterSeconds: 4 });
  });
});

describe('decide: one replica per request, sticky sessions', () => {
  it('keeps the request replica and goes to the primary rather than switch', () => {
    const { ctx, topology } = setup('caught-up');
    const r2 = topology.replica('r2');
    const c = defineContract('read-your-writes');
    expect(
      decide(routeRequest(c, { requestReplica: r2 ?? null, requiredLsn: 1n }), ctx),
    ).toMatchObject({
      kind: 'replica',
      reason: 'request-replica',
    });
    topology.updateReplica('r2', { health: 'down' });
    expect(
      decide(routeRequest(c, { requestReplica: r2 ?? null, requiredLsn: 1n }), ctx),
    ).toMatchObject({
      kind: 'primary',
      reason: 'request-replica-unavailable',
    });
  });

  it('checks the request replica once when it is behind', () => {
    const { ctx, topology } = setup('behind');
    const r1 = topology.replica('r1') ?? null;
    const c = defineContract('read-your-writes');
    expect(decide(routeRequest(c, { requestReplica: r1, requiredLsn: 100n }), ctx)).toMatchObject({
      kind: 'check',
      node: r1,
    });
    topology.observeReplayLsn('r1', 100n);
    expect(
      decide(routeRequest(c, { requestReplica: r1, requiredLsn: 100n, checkAllowed: false }), ctx)
        .kind,
    ).toBe('replica');
  });

  it('a monotonic session sticks to its replica, even when another has less lag', () => {
    const { ctx } = setup('caught-up');
    const d = decide(
      routeRequest(defineContract('monotonic'), { stickyRoute: 'replica:r2', requiredLsn: 1n }),
      ctx,
    );
    expect(d).toMatchObject({ kind: 'replica', reason: 'sticky-replica' });
    expect(d.kind === 'replica' && d.node.name).toBe('r2');
    // Its read-your-writes reads stick too: what it read under monotonic may be known only as
    // "on r2", and a detail page must not show less than the feed before it did.
    const ryw = decide(
      routeRequest(defineContract('read-your-writes'), { stickyRoute: 'replica:r2' }),
      ctx,
    );
    expect(ryw).toMatchObject({ kind: 'replica', reason: 'sticky-replica' });
    expect(ryw.kind === 'replica' && ryw.node.name).toBe('r2');
    // Bounded staleness and eventual reads do not.
    for (const c of [defineContract({ maxLag: '10s' }), defineContract('eventual')]) {
      const d = decide(routeRequest(c, { stickyRoute: 'replica:r2' }), ctx);
      expect(d.kind === 'replica' && d.node.name).toBe('r1');
    }
  });

  it('leaves a sticky replica only for the primary when it is unavailable', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r2', { health: 'quarantined' });
    expect(
      decide(routeRequest(defineContract('causal'), { stickyRoute: 'replica:r2' }), ctx),
    ).toMatchObject({
      kind: 'primary',
      reason: 'sticky-unavailable',
    });
    expect(
      decide(routeRequest(defineContract('monotonic'), { stickyRoute: 'replica:gone' }), ctx)
        .reason,
    ).toBe('sticky-unavailable');
  });

  it('read-your-writes leaves an unavailable sticky replica after a barrier, for any replica past it', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r2', { health: 'quarantined' });
    const ryw = defineContract({ contract: 'read-your-writes', fallback: 'stale' });
    // What the session read on r2 is bounded by the primary's position from now on.
    expect(
      decide(routeRequest(ryw, { stickyRoute: 'replica:r2', startedAt: 5 }), ctx),
    ).toMatchObject({ kind: 'barrier', reason: 'sticky-unavailable', since: 5 });
    const after = decide(
      routeRequest(ryw, { stickyRoute: 'replica:r2', barrierLsn: 100n, requiredLsn: 100n }),
      ctx,
    );
    expect(after.kind === 'replica' && after.node.name).toBe('r1');
    // Without a barrier to be had, the route's fallback chain decides.
    expect(
      decide(routeRequest(ryw, { stickyRoute: 'replica:r2', barrierFailed: true }), ctx),
    ).toMatchObject({ kind: 'error', reason: 'sticky-unavailable' });
  });

  it('leaves a sticky replica for another only once it is proven behind the required LSN', () => {
    const { ctx, topology, clock } = setup('caught-up');
    topology.updateReplica('r2', { replayLsn: 80n });
    clock.advance(10);
    const startedAt = clock.now();
    const c = defineContract('monotonic');
    const first = decide(
      routeRequest(c, { stickyRoute: 'replica:r2', requiredLsn: 100n, startedAt }),
      ctx,
    );
    expect(first).toMatchObject({ kind: 'check', lsn: 100n });
    expect(first.kind === 'check' && first.node.name).toBe('r2');
    // Without the check the cached position proves nothing: primary.
    expect(
      decide(
        routeRequest(c, {
          stickyRoute: 'replica:r2',
          requiredLsn: 100n,
          startedAt,
          checkAllowed: false,
        }),
        ctx,
      ).reason,
    ).toBe('sticky-unavailable');
    topology.observeReplayLsn('r2', 90n);
    const after = decide(
      routeRequest(c, {
        stickyRoute: 'replica:r2',
        requiredLsn: 100n,
        startedAt,
        checkAllowed: false,
      }),
      ctx,
    );
    expect(after).toMatchObject({ kind: 'replica', reason: 'replica-caught-up' });
    expect(after.kind === 'replica' && after.node.name).toBe('r1');
  });

  it('a session whose floor is on the primary stays there', () => {
    const { ctx } = setup('caught-up');
    expect(
      decide(routeRequest(defineContract('monotonic'), { stickyRoute: 'primary' }), ctx),
    ).toMatchObject({
      kind: 'primary',
      reason: 'sticky-primary',
    });
  });
});

describe('decide: eligibility and selection', () => {
  it('honours contract tags', () => {
    const clock = new ManualClock();
    const topology = new Topology({
      replicas: [{ name: 'oltp' }, { name: 'olap', tags: { pool: 'reporting' } }],
      clock,
    });
    topology.updatePrimary({ currentLsn: 10n, clusterId: CID });
    for (const name of ['oltp', 'olap']) {
      topology.updateReplica(name, {
        health: 'healthy',
        clusterId: CID,
        replayLsn: 10n,
        lagMs: name === 'oltp' ? 1 : 50,
      });
    }
    const ctx: DecideContext = {
      topology,
      budget: new PrimaryBudget({ clock }),
      selection: 'least-lag',
      cursor: { next: 0 },
    };
    const d = decide(
      routeRequest(defineContract({ contract: 'eventual', tags: { pool: 'reporting' } })),
      ctx,
    );
    expect(d.kind === 'replica' && d.node.name).toBe('olap');
  });

  it('never uses a replica of another cluster; an unknown cluster only for eventual', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r1', { clusterId: 'c/2' });
    topology.updateReplica('r2', { clusterId: null });
    expect(decide(routeRequest(defineContract('read-your-writes')), ctx).reason).toBe(
      'no-healthy-replica',
    );
    const e = decide(routeRequest(defineContract('eventual')), ctx);
    expect(e.kind === 'replica' && e.node.name).toBe('r2');
  });

  it('skips replicas whose circuit is not closed', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r1', { circuit: 'open' });
    topology.updateReplica('r2', { circuit: 'half-open' });
    expect(decide(routeRequest(defineContract('eventual')), ctx).reason).toBe('no-healthy-replica');
  });

  it('least-lag spreads reads over replicas whose lags differ by less than the tie margin', () => {
    const { ctx, topology } = setup('caught-up');
    topology.updateReplica('r1', { lagMs: 0 });
    topology.updateReplica('r2', { lagMs: 0 });
    const eventual = defineContract('eventual');
    const served = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const d = decide(routeRequest(eventual), ctx);
      if (d.kind === 'replica') served.set(d.node.name, (served.get(d.node.name) ?? 0) + 1);
    }
    expect(served).toEqual(
      new Map([
        ['r1', 5],
        ['r2', 5],
      ]),
    );
    // A clearly fresher replica still wins every time.
    topology.updateReplica('r2', { lagMs: 500 });
    for (let i = 0; i < 4; i++) {
      const d = decide(routeRequest(eventual), ctx);
      expect(d.kind === 'replica' && d.node.name).toBe('r1');
    }
  });

  it('least-in-flight, least-lag and round-robin', () => {
    const lag = setup('caught-up', true, 'least-lag');
    lag.topology.queryStarted('r1');
    const byLag = decide(routeRequest(defineContract('eventual')), lag.ctx);
    expect(byLag.kind === 'replica' && byLag.node.name).toBe('r1');

    const busy = setup('caught-up', true, 'least-in-flight');
    busy.topology.queryStarted('r1');
    const byLoad = decide(routeRequest(defineContract('eventual')), busy.ctx);
    expect(byLoad.kind === 'replica' && byLoad.node.name).toBe('r2');

    const rr = setup('caught-up', true, 'round-robin');
    const names = Array.from({ length: 4 }, () => {
      const d = decide(routeRequest(defineContract('eventual')), rr.ctx);
      return d.kind === 'replica' ? d.node.name : d.kind;
    });
    expect(names).toEqual(['r1', 'r2', 'r1', 'r2']);
  });

  it('a hint upgrades eventual to read-your-writes: a replica behind the LSN is not used', () => {
    const { ctx } = setup('behind');
    const request: RouteRequest = routeRequest(defineContract('eventual'), {
      readAfterWrite: true,
      requiredLsn: 100n,
      checkAllowed: false,
    });
    expect(decide(request, ctx)).toMatchObject({ kind: 'primary', reason: 'no-replica-caught-up' });
  });
});
