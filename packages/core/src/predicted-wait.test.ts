import { describe, expect, it } from 'vitest';
import { PrimaryBudget } from './budget.js';
import { defineContract } from './contract.js';
import { type DecideContext, decide, routeRequest } from './decide.js';
import { createEngine } from './engine.js';
import { ManualClock } from './manual-clock.js';
import { Topology } from './topology.js';

const CID = 'c/1';
const ryw = defineContract('read-your-writes');

/** r1 replays 200 ms late; the primary took a write (LSN 600) 20 ms ago. */
function setup(waitAllowanceMs: number | undefined) {
  const clock = new ManualClock(10_000);
  const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
  topology.updatePrimary({ currentLsn: 500n, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r1', { replayLsn: 500n, lagMs: 200, clusterId: CID, health: 'healthy' });
  clock.advance(100);
  topology.observePrimaryLsn(600n);
  clock.advance(20);
  const budget = new PrimaryBudget({ rate: 100, clock });
  const ctx: DecideContext = {
    topology,
    budget,
    selection: 'least-lag',
    cursor: { next: 0 },
    clock,
    ...(waitAllowanceMs === undefined ? {} : { waitAllowanceMs }),
  };
  // The position check already ran: r1 is known to be behind.
  const request = () => routeRequest(ryw, { requiredLsn: 600n, checkAllowed: false });
  return { clock, topology, ctx, request };
}

describe('decide: a wait predicted to fit the allowance, before a primary fallback', () => {
  it('waits when the replica is predicted to replay the LSN within the allowance', () => {
    const { ctx, request } = setup(300);
    // Reached 20 ms ago, 200 ms of lag: about 180 ms from now.
    expect(decide(request(), ctx)).toMatchObject({
      kind: 'wait',
      node: { name: 'r1' },
      lsn: 600n,
      timeoutMs: 300,
      resumeAt: 0,
      reason: 'no-replica-caught-up',
    });
  });

  it('goes to the primary at once when the prediction is beyond the allowance', () => {
    const { ctx, request } = setup(150);
    expect(decide(request(), ctx)).toMatchObject({ kind: 'primary', fallback: 'primary' });
  });

  it('never waits with no allowance (the default), or once the request has waited', () => {
    expect(decide(setup(undefined).request(), setup(undefined).ctx).kind).toBe('primary');
    expect(decide(setup(0).request(), setup(0).ctx).kind).toBe('primary');
    const { ctx, request } = setup(300);
    const waited = { ...request(), waitAllowed: false };
    expect(decide(waited, ctx).kind).toBe('primary');
  });

  it('an LSN no position seen yet reaches (another instance wrote it) arrives a lag from now', () => {
    const { ctx } = setup(300);
    const ahead = routeRequest(ryw, {
      requiredLsn: 700n,
      tokenLsn: 700n,
      tokenIssuedBy: Number.POSITIVE_INFINITY,
      checkAllowed: false,
    });
    expect(decide(ahead, ctx)).toMatchObject({ kind: 'wait', lsn: 700n });
    const { ctx: tight } = setup(190);
    expect(decide(ahead, tight).kind).toBe('primary');
  });

  it("a route's waitAllowance overrides the engine's", () => {
    const { ctx } = setup(0);
    const patient = defineContract({ contract: 'read-your-writes', waitAllowance: '300ms' });
    expect(
      decide(routeRequest(patient, { requiredLsn: 600n, checkAllowed: false }), ctx).kind,
    ).toBe('wait');
    const { ctx: engineWide } = setup(300);
    const never = defineContract({ contract: 'read-your-writes', waitAllowance: 0 });
    expect(
      decide(routeRequest(never, { requiredLsn: 600n, checkAllowed: false }), engineWide).kind,
    ).toBe('primary');
  });

  it('the engine option: checked, and a request waits once then reads the primary', async () => {
    const topology = new Topology({ replicas: [{ name: 'r1' }] });
    await expect(
      createEngine({
        topology,
        secret: 'a-secret-that-is-long-enough-0123456789',
        waitAllowance: -1,
      }),
    ).rejects.toThrow(/waitAllowance/);
    const { clock, topology: t } = setup(undefined);
    const engine = await createEngine({
      topology: t,
      secret: 'a-secret-that-is-long-enough-0123456789',
      clock,
      waitAllowance: '300ms',
      budget: false,
    });
    const { token } = await engine.codec.sign({ lsn: 600n, cid: CID });
    const f = await engine.begin({ token });
    expect(f.route()).toMatchObject({ kind: 'check' });
    expect(f.route()).toMatchObject({ kind: 'wait', timeoutMs: 300 });
    // The wait ran out with r1 still behind: the primary.
    clock.advance(300);
    expect(f.route()).toMatchObject({ kind: 'primary' });
  });
});
