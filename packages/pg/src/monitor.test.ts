import { Topology } from '@freshgate/core/adapter';
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
