import type { ContractInput } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

describe('the monitor rests while nobody reads (monitor.idle)', () => {
  let cluster: Cluster;
  let gate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    // Rest after 500 ms without a read, then poll once a minute: no poll within the test.
    gate = await freshgateFor(cluster, {
      monitor: { interval: 50, idle: { after: 500, interval: 60_000 } },
    });
    await untilHealthy(gate);
    await gate.primary.query('CREATE TABLE IF NOT EXISTS idle_items (id int PRIMARY KEY)');
  });

  afterAll(async () => {
    await gate?.close();
    await cluster?.stop();
  });

  const lagOf = () => gate.topology.replica('r1')!.lagMs;
  const read = async (contract: ContractInput) => {
    const started = await gate.begin({ contract });
    await started.db.query('SELECT count(*) FROM idle_items');
    return started.freshness.headers['X-Freshness-Route'];
  };

  it('at rest publishes no lag but keeps positions: a read that needs no lag still goes to the replica, and wakes it', async () => {
    await waitFor('the rest', () => (lagOf() === null ? true : undefined));
    expect(gate.topology.replica('r1')!.replayLsn).not.toBeNull();
    expect(gate.topology.replica('r1')!.health).toBe('healthy');
    expect(await read('eventual')).toBe('replica:r1');
    await waitFor('the lag measured again', () => (lagOf() !== null ? true : undefined));
    expect(await read({ maxLag: '5s' })).toBe('replica:r1');
  });

  it('a bounded read that finds it resting goes to the primary; once woken, replicas serve them', async () => {
    await waitFor('the rest', () => (lagOf() === null ? true : undefined));
    expect(await read({ maxLag: '5s' })).toBe('primary');
    await waitFor('the lag measured again', () => (lagOf() !== null ? true : undefined));
    expect(await read({ maxLag: '5s' })).toBe('replica:r1');
  });
});
