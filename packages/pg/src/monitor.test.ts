import { Topology } from '@freshgate/core/adapter';
import { ManualClock } from '@freshgate/core/testing';
import { describe, expect, it } from 'vitest';
import { type ConnectNode, ReplicaMonitor } from './monitor.js';

describe('ReplicaMonitor connections', () => {
  it('ends a connection that arrives after its poll timed out', async () => {
    let ended = 0;
    let arrived = 0;
    // A server that accepts connections more slowly than the poll timeout.
    const slowConnect: ConnectNode = () =>
      new Promise((resolve) =>
        setTimeout(() => {
          arrived++;
          resolve({
            query: async () => ({ rows: [] }),
            end: async () => {
              ended++;
            },
          });
        }, 40),
      );
    const topology = new Topology({ replicas: [] });
    const monitor = new ReplicaMonitor(
      topology,
      { primary: slowConnect, replicas: {} },
      { timeout: 10 },
    );
    await monitor.pollNow('primary');
    expect(topology.primary.health).toBe('down');
    await new Promise((r) => setTimeout(r, 80));
    expect(arrived).toBe(1);
    expect(ended).toBe(1);
    await monitor.close();
  });
});

const primaryRow = { recovery: false, lsn: '0/10', sysid: '7301', tli: 1, started: '1' };

describe('ReplicaMonitor recovery', () => {
  it('keeps polling a node whose poll threw, and pollNow never rejects (regression: a throwing poll silently stopped the node being polled)', async () => {
    let polls = 0;
    let throwOnce = true;
    // The first poll fails to connect, and the clock fails while the breaker records it:
    // an error raised inside the poll's own failure handling.
    const clock = {
      now() {
        if (throwOnce) {
          throwOnce = false;
          throw new Error('clock failed');
        }
        return Date.now();
      },
    };
    const topology = new Topology({ replicas: [] });
    const monitor = new ReplicaMonitor(
      topology,
      {
        primary: async () => {
          polls++;
          if (polls === 1) throw new Error('ECONNREFUSED');
          return { query: async () => ({ rows: [primaryRow] }), end: async () => {} };
        },
        replicas: {},
      },
      {
        interval: 5,
        jitter: 0,
        clock,
        breaker: { failureThreshold: 1, open: 1, maxOpen: 1 },
      },
    );
    await expect(monitor.pollNow('primary')).resolves.toBeUndefined();
    monitor.start();
    await new Promise((r) => setTimeout(r, 100));
    await monitor.close();
    expect(polls).toBeGreaterThan(1);
    expect(topology.primary.health).toBe('healthy');
  });

  it('a forced poll bypasses the open breaker, so a primary that is back is seen at once', async () => {
    let up = false;
    const topology = new Topology({ replicas: [] });
    const monitor = new ReplicaMonitor(
      topology,
      {
        primary: async () => {
          if (!up) throw new Error('ECONNREFUSED');
          return { query: async () => ({ rows: [primaryRow] }), end: async () => {} };
        },
        replicas: {},
      },
      { breaker: { failureThreshold: 1, open: 60_000, maxOpen: 60_000 } },
    );
    await monitor.pollNow('primary');
    expect(topology.primary.health).toBe('down');
    up = true;
    await monitor.pollNow('primary');
    expect(topology.primary.health).toBe('down'); // the breaker waits out its back-off
    await monitor.pollNow('primary', { force: true });
    expect(topology.primary.health).toBe('healthy');
    expect(topology.primary.clusterId).toBe('7301/1');
    expect(topology.lineage).toEqual({ systemId: '7301', timeline: 1, ancestors: [] });
    await monitor.close();
  });

  it('joins concurrent poll requests instead of running polls of one node side by side', async () => {
    let running = 0;
    let overlapped = false;
    let polls = 0;
    const topology = new Topology({ replicas: [] });
    const monitor = new ReplicaMonitor(topology, {
      primary: async () => ({
        query: async () => {
          polls++;
          running++;
          if (running > 1) overlapped = true;
          await new Promise((r) => setTimeout(r, 10));
          running--;
          return { rows: [primaryRow] };
        },
        end: async () => {},
      }),
      replicas: {},
    });
    await Promise.all(Array.from({ length: 10 }, () => monitor.pollNow('primary')));
    expect(overlapped).toBe(false);
    // The first runs at once; the nine requested meanwhile share one more poll.
    expect(polls).toBeLessThanOrEqual(2);
    await monitor.close();
  });
});

describe('ReplicaMonitor rest (idle)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  async function until(check: () => boolean, what: string) {
    for (let i = 0; i < 500 && !check(); i++) await sleep(10);
    if (!check()) throw new Error(`timed out waiting for ${what}`);
  }
  const replicaRow = { recovery: true, lsn: '0/10', sysid: '7301', tli: 1, started: '1' };
  function scripted() {
    const polls: string[] = [];
    const node = (name: string, row: Record<string, unknown>) => async () => ({
      query: async () => {
        polls.push(name);
        return { rows: [row] };
      },
      end: async () => {},
    });
    return {
      polls,
      nodes: { primary: node('primary', primaryRow), replicas: { r1: node('r1', replicaRow) } },
    };
  }

  it('polls every idle.interval and publishes no replica lag while nobody reads; a read wakes it, the primary polled first', async () => {
    const { polls, nodes } = scripted();
    const topology = new Topology({ replicas: [{ name: 'r1' }] });
    // Rest after 300 ms without a read, then poll only once a minute: none within the test.
    const monitor = new ReplicaMonitor(topology, nodes, {
      interval: 10,
      idle: { after: 300, interval: 60_000 },
    });
    monitor.start();
    await monitor.ready();
    await until(() => topology.replica('r1')?.lagMs === 0, 'the first lag');
    await until(() => topology.replica('r1')?.lagMs === null, 'the rest');
    // The node that did not notice the rest first polls once more at `interval`, then rests.
    await sleep(200);
    const resting = polls.length;
    await sleep(300);
    expect(polls.length - resting).toBeLessThanOrEqual(1);
    expect(topology.replica('r1')?.health).toBe('healthy');

    const woke = polls.length;
    topology.noteDemand();
    await until(() => topology.replica('r1')?.lagMs === 0, 'the lag after waking');
    expect(polls.slice(woke, woke + 2)).toEqual(['primary', 'r1']);
    // Reads keep it awake: polls go on at `interval`.
    for (let i = 0; i < 20; i++) {
      topology.noteDemand();
      await sleep(20);
    }
    expect(polls.length - woke).toBeGreaterThan(6);
    expect(topology.replica('r1')?.lagMs).toBe(0);
    await monitor.close();
  });

  it('never rests with idle: false, and checks idle', async () => {
    const { polls, nodes } = scripted();
    const topology = new Topology({ replicas: [{ name: 'r1' }] });
    const monitor = new ReplicaMonitor(topology, nodes, { interval: 10, idle: false });
    monitor.start();
    await sleep(400);
    expect(topology.replica('r1')?.lagMs).toBe(0);
    expect(polls.length).toBeGreaterThan(10);
    await monitor.close();
    expect(
      () => new ReplicaMonitor(topology, nodes, { interval: 100, idle: { interval: 50 } }),
    ).toThrow(/monitor\.idle\.interval.*at least monitor\.interval/);
    expect(() => new ReplicaMonitor(topology, nodes, { idle: { every: 1 } as never })).toThrow(
      /monitor\.idle\.every/,
    );
  });
});

describe('ReplicaMonitor lag bound', () => {
  it('counts a caught-up replica from the primary sample it caught up with, a lagging one from its own sample; positions count from when the query was sent', async () => {
    const clock = new ManualClock(1_000);
    const rows = {
      primary: { recovery: false, lsn: '0/10', sysid: '7301', tli: 1, started: '1' },
      r1: { recovery: true, lsn: '0/10', sysid: '7301', tli: 1, started: '1' },
    };
    // Each query takes 5 ms of clock time: the answer describes the node as of some moment
    // between sending and receiving.
    const node = (row: Record<string, unknown>) => async () => ({
      query: async () => {
        clock.advance(5);
        return { rows: [row] };
      },
      end: async () => {},
    });
    const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
    const monitor = new ReplicaMonitor(
      topology,
      { primary: node(rows.primary), replicas: { r1: node(rows.r1) } },
      { clock, idle: false },
    );
    await monitor.pollNow('primary'); // sent at 1 000
    clock.advance(40);
    await monitor.pollNow('r1'); // answered at 1 050
    const r1 = topology.replica('r1')!;
    // Caught up with the sample sent at 1 000: what the primary wrote since may be missing.
    expect(r1).toMatchObject({ lagMs: 0, lagAt: 1_000 });

    clock.advance(50);
    rows.primary.lsn = '0/20';
    await monitor.pollNow('primary'); // sent at 1 100
    clock.advance(10);
    await monitor.pollNow('r1'); // answered at 1 120, still at 0/10
    // The primary was at 0/10 until at least 1 000 (sent), past it by 1 100: 120 ms at 1 120.
    expect(r1).toMatchObject({ lagMs: 120, lagAt: 1_120 });
    await monitor.close();
  });
});
