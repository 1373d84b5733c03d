import { describe, expect, it } from 'vitest';
import { createEngine } from './engine.js';
import { ManualClock } from './manual-clock.js';
import { memoryPinStore } from './pin-store.js';
import { Topology } from './topology.js';

const SECRET = 'request-freshness-test-secret-long-enough';
const CID = 'c/1';

async function setup() {
  const clock = new ManualClock(1_000_000);
  const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
  topology.updatePrimary({ currentLsn: 1000n, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r1', { replayLsn: 900n, lagMs: 10, clusterId: CID, health: 'healthy' });
  clock.advance(100);
  const engine = await createEngine({
    topology,
    secret: SECRET,
    clock,
    pinStore: memoryPinStore({ clock }),
  });
  return { engine, topology };
}

describe('RequestFreshness.useContract', () => {
  it('routes by the contract declared after begin (an Express route declaring strong)', async () => {
    const { engine } = await setup();
    const freshness = await engine.begin({ contract: 'eventual' });
    freshness.useContract(engine.contract('strong'));
    expect(freshness.contract.level).toBe('strong');
    expect(freshness.route().kind).toBe('primary');
  });

  it('applies a contract declared after a statement to the later statements, on the same replica', async () => {
    const { engine } = await setup();
    const freshness = await engine.begin({ contract: 'eventual' });
    const first = freshness.route();
    expect(first.kind).toBe('replica');
    freshness.useContract(engine.contract('read-your-writes'));
    expect(freshness.contract.level).toBe('read-your-writes');
    const second = freshness.route();
    expect(second.kind === 'replica' && second.node).toBe(first.kind === 'replica' && first.node);
    freshness.useContract(engine.contract('strong'));
    expect(freshness.route().kind).toBe('primary');
  });
});

describe('RequestFreshness.forwardToken', () => {
  it('is null without a token, the presented token when valid, and the issued one after a write', async () => {
    const { engine } = await setup();
    expect((await engine.begin()).forwardToken()).toBeNull();
    expect((await engine.begin({ token: 'not-a-token' })).forwardToken()).toBeNull();

    const { token } = await engine.codec.sign({ lsn: 950n, cid: CID });
    const freshness = await engine.begin({ token });
    expect(freshness.forwardToken()).toBe(token);
    freshness.route({ locking: true });
    await freshness.wrote(1200n);
    expect(freshness.forwardToken()).not.toBe(token);
    expect(freshness.forwardToken()).toBe(freshness.token);
  });

  it('reads the token from the cookie when there is no header', async () => {
    const clock = new ManualClock(1_000_000);
    const topology = new Topology({ replicas: [], clock });
    topology.updatePrimary({ currentLsn: 1000n, clusterId: CID, health: 'healthy' });
    const engine = await createEngine({ topology, secret: SECRET, clock, cookie: true });
    const { token } = await engine.codec.sign({ lsn: 950n, cid: CID });
    const freshness = await engine.begin({ cookie: `a=1; fg_fresh=${token}` });
    expect(freshness.forwardToken()).toBe(token);
    expect(freshness.requiredLsn()).toBe(950n);
  });
});

describe('Engine.defaultContract', () => {
  it('is the validated defaultContract option', async () => {
    const topology = new Topology();
    const engine = await createEngine({ topology, secret: SECRET, defaultContract: 'monotonic' });
    expect(engine.defaultContract.level).toBe('monotonic');
  });
});
