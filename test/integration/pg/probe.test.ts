import { ConfigError } from '@freshgate/core';
import { createFreshgate, type Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../../harness/index.js';
import { freshgateFor, TEST_SECRET, untilHealthy } from '../support.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('read-after-write probe: the replication delay users see, per replica', () => {
  let cluster: Cluster;
  let gate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    gate = await freshgateFor(cluster, {
      probe: { interval: '100ms' },
      monitor: { health: { enterLag: 200, enterFor: 0, exitLag: 500, exitFor: 0 } },
    });
    await untilHealthy(gate);
  });

  afterAll(async () => {
    await gate?.close();
    await cluster?.stop();
  });

  const probe = () => gate.status().probe!;

  it('measures every replica, with one row on the primary whatever the number of writes', async () => {
    await waitFor('both replicas probed twice', async () =>
      probe().r1!.samples >= 2 && probe().r2!.samples >= 2 ? true : undefined,
    );
    expect(probe().r1!.delayMs).toBeGreaterThanOrEqual(0);
    expect(probe().r1!.pendingMs).toBeLessThan(5_000);
    const rows = await cluster.primary.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM freshgate_probe',
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('a paused replica: its delay grows (and it turns lagging) while the other stays low; back to normal after resume', async () => {
    await cluster.replica('r1').pause();
    try {
      await waitFor(
        'r1 behind the probe by 1 s',
        async () => (probe().r1!.pendingMs >= 1_000 ? true : undefined),
        { timeoutMs: 10_000 },
      );
      const during = probe();
      // The other replica keeps showing each write quickly (generous: a loaded machine).
      expect(during.r2!.pendingMs).toBeLessThan(1_000);
      expect(during.r2!.delayMs!).toBeLessThan(1_000);
      // The probe's oldest unseen write counts toward r1's lag: health follows it.
      // (A monitor sample taken just before the probe's 1 s may show less: wait for the next.)
      await waitFor('r1 lagging, by at least the probe’s 1 s', async () => {
        const r1 = gate.topology.replica('r1')!;
        return r1.health === 'lagging' && r1.lagMs! >= 1_000 ? true : undefined;
      });
    } finally {
      await cluster.replica('r1').resume();
    }
    const before = probe().r1!.samples;
    await waitFor(
      'r1 shows the probe again',
      async () => (probe().r1!.samples > before + 2 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    await sleep(300);
    expect(probe().r1!.pendingMs).toBeLessThan(1_000);
    expect(probe().r1!.delayMs!).toBeLessThan(1_000);
    await waitFor('r1 healthy again', async () =>
      gate.topology.replica('r1')!.health === 'healthy' ? true : undefined,
    );
  });

  it('rejects bad probe settings, naming the option', async () => {
    const attempt = (probeOption: unknown) =>
      createFreshgate({
        primary: cluster.primary.url,
        replicas: {},
        secret: TEST_SECRET,
        probe: probeOption as never,
      }).then(
        async (g) => {
          await g.close();
          return null;
        },
        (error: unknown) => (error instanceof ConfigError ? error.option : error),
      );
    expect(await attempt({ intervall: '1s' })).toBe('probe.intervall');
    expect(await attempt({ table: 'Robert"); DROP TABLE x;--' })).toBe('probe.table');
    expect(await attempt({ interval: 0 })).toBe('probe.interval');
    expect(await attempt({ health: 'yes' })).toBe('probe.health');
    expect(await attempt({ table: 'ops.freshgate_probe', interval: '1m' })).toBeNull();
  });
});
