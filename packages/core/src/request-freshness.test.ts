import { describe, expect, it } from 'vitest';
import { defineContract } from './contract.js';
import { createEngine } from './engine.js';
import { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';
import { memoryPinStore } from './pin-store.js';
import { hashSessionKey } from './session-key.js';
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

  it('refuses a new contract once a statement was routed', async () => {
    const { engine } = await setup();
    const freshness = await engine.begin({ contract: 'eventual' });
    expect(freshness.route().kind).toBe('replica');
    expect(() => freshness.useContract(defineContract('strong'))).toThrow(ConfigError);
  });

  it("accepts another session's token when the declared route turns out to be causal", async () => {
    const { engine } = await setup();
    const { token } = await engine.codec.sign({ lsn: 950n, cid: CID, sid: hashSessionKey('a') });
    const freshness = await engine.begin({ token, sessionKey: 'b' });
    expect(freshness.tokenRejection).toBe('foreign-session');
    freshness.useContract(engine.contract('causal'));
    expect(freshness.tokenRejection).toBeNull();
    expect(freshness.requiredLsn()).toBe(950n);
    freshness.useContract(engine.contract('monotonic'));
    expect(freshness.tokenRejection).toBe('foreign-session');
    expect(freshness.requiredLsn()).toBeNull();
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
