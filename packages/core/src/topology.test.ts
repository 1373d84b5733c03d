import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';
import { Topology, type TopologyEvent } from './topology.js';

describe('Topology', () => {
  it('starts nodes unknown and keeps state objects stable', () => {
    const topology = new Topology({ replicas: [{ name: 'r1', tags: { pool: 'reporting' } }] });
    const r1 = topology.replica('r1');
    expect(r1).toMatchObject({
      health: 'unknown',
      circuit: 'closed',
      replayLsn: null,
      route: 'replica:r1',
    });
    topology.updateReplica('r1', { health: 'healthy', replayLsn: 5n, lagMs: 3 });
    expect(topology.replica('r1')).toBe(r1);
    expect(topology.replicaByRoute('replica:r1')).toBe(r1);
    expect(topology.replicas[0]).toBe(r1);
  });

  it('observeReplayLsn only moves forward and stamps the observation time', () => {
    const clock = new ManualClock(1000);
    const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
    expect(topology.observeReplayLsn('r1', 10n)).toBe(true);
    clock.advance(5);
    expect(topology.observeReplayLsn('r1', 7n)).toBe(false);
    expect(topology.replica('r1')).toMatchObject({ replayLsn: 10n, replayLsnAt: 1000 });
    expect(topology.observeReplayLsn('r1', 12n)).toBe(true);
    expect(topology.replica('r1')?.replayLsnAt).toBe(1005);
    // The monitor is the authority on rebuilds: it may move a position back.
    topology.updateReplica('r1', { replayLsn: 1n });
    expect(topology.replica('r1')?.replayLsn).toBe(1n);
    expect(topology.observeReplayLsn('nope', 1n)).toBe(false);
  });

  it('observePrimaryLsn only moves forward', () => {
    const topology = new Topology();
    topology.updatePrimary({ currentLsn: 100n });
    expect(topology.observePrimaryLsn(50n)).toBe(false);
    expect(topology.observePrimaryLsn(150n)).toBe(true);
    expect(topology.primary.currentLsn).toBe(150n);
  });

  it('emits health, circuit and cluster changes once, guarding listeners', () => {
    const topology = new Topology({ replicas: [{ name: 'r1' }] });
    const events: TopologyEvent[] = [];
    topology.on(() => {
      throw new Error('listener bug');
    });
    const off = topology.on((e) => events.push(e));
    topology.updateReplica('r1', { health: 'healthy', circuit: 'open', clusterId: 'c/1' });
    topology.updateReplica('r1', { health: 'healthy' });
    topology.updatePrimary({ health: 'healthy' });
    off();
    topology.updateReplica('r1', { health: 'down' });
    expect(events).toEqual([
      { type: 'cluster', node: 'r1', from: null, to: 'c/1' },
      { type: 'health', node: 'r1', from: 'unknown', to: 'healthy' },
      { type: 'circuit', node: 'r1', from: 'closed', to: 'open' },
      { type: 'health', node: 'primary', from: 'unknown', to: 'healthy' },
    ]);
  });

  it('snapshots with LSNs as text', () => {
    const topology = new Topology({ replicas: [{ name: 'r1' }] });
    topology.updatePrimary({ currentLsn: 0x16_b374_d848n, clusterId: 'c/1' });
    topology.updateReplica('r1', { replayLsn: 0x16_0000_0000n, lagMs: 40, lagBytes: 1024 });
    topology.queryStarted('r1');
    expect(topology.snapshot()).toEqual({
      primary: {
        name: 'primary',
        currentLsn: '16/B374D848',
        clusterId: 'c/1',
        health: 'unknown',
        circuit: 'closed',
      },
      replicas: [
        {
          name: 'r1',
          tags: {},
          replayLsn: '16/0',
          lagMs: 40,
          lagBytes: 1024,
          health: 'unknown',
          circuit: 'closed',
          clusterId: null,
          inFlight: 1,
        },
      ],
    });
    topology.queryFinished('r1');
    topology.queryFinished('r1');
    expect(topology.replica('r1')?.inFlight).toBe(0);
  });

  it('rejects duplicate or unnamed replicas and unknown names', () => {
    expect(() => new Topology({ replicas: [{ name: 'a' }, { name: 'a' }] })).toThrow(ConfigError);
    expect(() => new Topology({ replicas: [{ name: '' }] })).toThrow(ConfigError);
    const topology = new Topology({ replicas: [{ name: 'a' }] });
    expect(() => topology.updateReplica('b', { health: 'healthy' })).toThrow(/unknown replica "b"/);
    topology.removeReplica('a');
    expect(topology.replicas).toHaveLength(0);
    expect(topology.replicaByRoute('replica:a')).toBeUndefined();
  });
});
