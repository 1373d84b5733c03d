import { describe, expect, it } from 'vitest';
import { PrimaryBudget } from './budget.js';
import { defineContract } from './contract.js';
import { type DecideContext, decide, routeRequest } from './decide.js';
import { createEngine } from './engine.js';
import { ManualClock } from './manual-clock.js';
import type { PinStore } from './pin-store.js';
import { Telemetry } from './telemetry.js';
import { Topology } from './topology.js';

const CID = 'c/1';

function setup() {
  const clock = new ManualClock(10_000);
  const topology = new Topology({ replicas: [{ name: 'r1' }, { name: 'r2' }], clock });
  topology.updatePrimary({ currentLsn: 500n, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r1', { replayLsn: 480n, lagMs: 20, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r2', { replayLsn: 300n, lagMs: 800, clusterId: CID, health: 'healthy' });
  const budget = new PrimaryBudget({ rate: 1, burst: 10, clock });
  const ctx: DecideContext = { topology, budget, selection: 'least-lag', cursor: { next: 0 } };
  return { clock, topology, budget, ctx };
}

describe('decide: barrier reads', () => {
  const ryw = defineContract('read-your-writes');
  const waiting = defineContract({
    contract: 'read-your-writes',
    fallback: [{ wait: 300 }, 'primary'],
  });

  it('asks for the primary position observed after the request arrived before routing anything', () => {
    const { ctx, budget } = setup();
    for (const [fields, reason] of [
      [{ storeUnavailable: true }, 'store-unavailable'],
      [{ readAfterWrite: true }, 'hint-no-lsn'],
      [{ requiredLsn: 600n }, 'future-lsn'],
    ] as const) {
      expect(decide(routeRequest(ryw, { ...fields, startedAt: 9_000 }), ctx)).toMatchObject({
        kind: 'barrier',
        reason,
        since: 9_000,
        route: null,
      });
    }
    // Asking costs no budget.
    expect(budget.available()).toBe(10);
  });

  it('a replica that has replayed the barrier serves the read', () => {
    const { ctx } = setup();
    const request = routeRequest(ryw, {
      storeUnavailable: true,
      barrierLsn: 470n,
      barrierCause: 'store-unavailable',
      requiredLsn: 470n,
    });
    expect(decide(request, ctx)).toMatchObject({
      kind: 'replica',
      route: 'replica:r1',
      reason: 'barrier-caught-up',
    });
  });

  it('no replica past the barrier: one check, then the route wait, then the primary within the budget', () => {
    const { ctx, budget } = setup();
    const fields = {
      readAfterWrite: true,
      barrierLsn: 500n,
      barrierCause: 'hint-no-lsn' as const,
      requiredLsn: 500n,
    };
    expect(decide(routeRequest(waiting, fields), ctx)).toMatchObject({
      kind: 'check',
      node: { name: 'r1' },
      lsn: 500n,
    });
    const wait = decide(routeRequest(waiting, { ...fields, checkAllowed: false }), ctx);
    expect(wait).toMatchObject({
      kind: 'wait',
      node: { name: 'r1' },
      lsn: 500n,
      reason: 'hint-no-lsn',
    });
    const after = decide(
      routeRequest(waiting, {
        ...fields,
        checkAllowed: false,
        waitAllowed: false,
        fallbackFrom: 1,
      }),
      ctx,
    );
    expect(after).toMatchObject({ kind: 'primary', reason: 'hint-no-lsn', fallback: 'primary' });
    expect(budget.available()).toBe(9);
  });

  it('never serves a barrier read stale: a stale step becomes the primary within the budget', () => {
    const { ctx } = setup();
    const stale = defineContract({ contract: 'read-your-writes', fallback: ['stale', 'error'] });
    const d = decide(
      routeRequest(stale, {
        storeUnavailable: true,
        barrierLsn: 500n,
        barrierCause: 'store-unavailable',
        requiredLsn: 500n,
        checkAllowed: false,
      }),
      ctx,
    );
    expect(d).toMatchObject({ kind: 'primary', reason: 'store-unavailable', stale: false });
  });

  it('no barrier to be had (primary unreachable): primary within the budget, else fail closed', () => {
    const { ctx } = setup();
    const d = decide(routeRequest(ryw, { readAfterWrite: true, barrierFailed: true }), ctx);
    expect(d).toMatchObject({ kind: 'primary', reason: 'hint-no-lsn' });
  });

  it('a request whose replica died asks for a barrier observed after the failure, even under eventual', () => {
    const { ctx } = setup();
    const d = decide(routeRequest(defineContract('eventual'), { replicaLostAt: 12_345 }), ctx);
    expect(d).toMatchObject({ kind: 'barrier', reason: 'request-replica-lost', since: 12_345 });
  });
});

describe('engine: barrier reads end to end (no I/O)', () => {
  const down: PinStore = {
    get: () => Promise.reject(new Error('ECONNREFUSED')),
    extend: () => Promise.reject(new Error('ECONNREFUSED')),
  };

  it('store down, session key only: barrier, then the replica that has replayed it; counted by cause and source', async () => {
    const { topology, clock } = setup();
    const points: { name: string; attributes: Record<string, unknown> }[] = [];
    const counter = (name: string) => ({
      add: (_: number, attributes: Record<string, unknown> = {}) =>
        points.push({ name, attributes }),
      record: () => {},
    });
    const meter = { createCounter: counter, createHistogram: counter } as never;
    const engine = await createEngine({
      topology,
      clock,
      secret: 'barrier-test-secret-that-is-long-enough',
      pinStore: down,
      telemetry: { meter },
    });
    const f = await engine.begin({ contract: 'monotonic', sessionKey: 'user-1' });
    const first = f.route();
    expect(first).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
    f.observedBarrier(480n, 'query');
    expect(f.route()).toMatchObject({
      kind: 'replica',
      route: 'replica:r1',
      reason: 'barrier-caught-up',
    });
    expect(points).toContainEqual({
      name: 'freshgate.barriers',
      attributes: { 'freshgate.reason': 'store-unavailable', 'freshgate.barrier.source': 'query' },
    });
    // The telemetry class is what the engine uses: its counters have these names.
    expect(new Telemetry({ meter })).toBeInstanceOf(Telemetry);
  });

  it('store down, valid token: routes by the token, no barrier, no store wait beyond the failure', async () => {
    const { topology, clock } = setup();
    const engine = await createEngine({
      topology,
      clock,
      secret: 'barrier-test-secret-that-is-long-enough',
      pinStore: down,
      cookie: true,
    });
    const { token } = await engine.codec.sign({ lsn: 300n, cid: CID });
    for (const input of [{ token }, { cookie: `fg_fresh=${token}` }]) {
      const f = await engine.begin({
        ...input,
        contract: 'read-your-writes',
        sessionKey: 'user-1',
      });
      expect(f.route()).toMatchObject({ kind: 'replica', reason: 'replica-caught-up' });
    }
  });
});

describe('engine: pins after a store outage', () => {
  it("a failed pin write makes that session's pin reads incomplete until the pin would have expired: barrier meanwhile", async () => {
    const { topology, clock } = setup();
    let failing = true;
    const pins = new Map<string, { lsn: bigint | null; node: string | null; ttlMs: number }>();
    const flaky: PinStore = {
      get: async (key) => pins.get(key),
      extend: async (key, update) => {
        if (failing) throw new Error('ECONNREFUSED');
        pins.set(key, { lsn: update.lsn, node: update.node ?? null, ttlMs: update.ttlMs });
      },
    };
    const engine = await createEngine({
      topology,
      clock,
      secret: 'barrier-test-secret-that-is-long-enough',
      pinStore: flaky,
      pinTtl: '5s',
    });
    const writer = await engine.begin({ sessionKey: 'user-1' });
    await writer.wrote(520n);
    failing = false;
    // The store answers again, without the write it missed.
    const reader = await engine.begin({ sessionKey: 'user-1' });
    expect(reader.route()).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
    // Other sessions lost nothing: their pins are whole.
    const other = await engine.begin({ sessionKey: 'user-2' });
    expect(other.route().kind).not.toBe('barrier');
    clock.advance(5_001);
    const later = await engine.begin({ sessionKey: 'user-1' });
    expect(later.route().kind).not.toBe('barrier');
  });
});

describe('engine: a store that cannot vouch for absence', () => {
  function vouchingStore() {
    const state = { epoch: 0, complete: true, failing: false };
    const store: PinStore = {
      get: async () => undefined,
      extend: async () => {
        if (state.failing) throw new Error('ECONNREFUSED');
      },
      vouch: () => ({ epoch: state.epoch, complete: state.complete }),
      unpinnedHoldMs: 1_000,
    };
    return { state, store };
  }

  async function engineWith(store: PinStore) {
    const { topology, clock } = setup();
    const engine = await createEngine({
      topology,
      clock,
      secret: 'barrier-test-secret-that-is-long-enough',
      pinStore: store,
      pinTtl: '5s',
    });
    return { engine, clock };
  }

  it('a new store epoch (pins lost) makes every missing pin unknown for one pinTtl: barrier meanwhile', async () => {
    const { state, store } = vouchingStore();
    const { engine, clock } = await engineWith(store);
    expect((await engine.begin({ sessionKey: 'user-1' })).route().kind).not.toBe('barrier');
    state.epoch = 1;
    const after = await engine.begin({ sessionKey: 'user-1' });
    expect(after.route()).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
    clock.advance(4_900);
    expect((await engine.begin({ sessionKey: 'user-2' })).route().kind).toBe('barrier');
    clock.advance(200);
    expect((await engine.begin({ sessionKey: 'user-2' })).route().kind).not.toBe('barrier');
    // A valid token never depends on the store's epoch: no session key, no pin, no barrier.
    state.epoch = 2;
    expect((await engine.begin({})).route().kind).not.toBe('barrier');
  });

  it('while the store says it is incomplete (another instance cut off), key-only reads take a barrier, also after bindSession', async () => {
    const { state, store } = vouchingStore();
    const { engine } = await engineWith(store);
    state.complete = false;
    expect((await engine.begin({ sessionKey: 'user-1' })).route()).toMatchObject({
      kind: 'barrier',
      reason: 'store-unavailable',
    });
    const bound = await engine.begin({});
    await bound.bindSession('user-3');
    expect(bound.route()).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
    state.complete = true;
    expect((await engine.begin({ sessionKey: 'user-1' })).route().kind).not.toBe('barrier');
  });

  it('a write whose pin failed holds its answer for the store’s unpinnedHoldMs; a written pin does not', async () => {
    const { state, store } = vouchingStore();
    const { engine } = await engineWith(store);
    const quick = await engine.begin({ sessionKey: 'user-1' });
    let started = performance.now();
    await quick.wrote(520n);
    expect(performance.now() - started).toBeLessThan(800);
    state.failing = true;
    const held = await engine.begin({ sessionKey: 'user-1' });
    started = performance.now();
    await held.wrote(530n);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });
});
