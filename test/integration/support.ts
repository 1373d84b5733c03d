import { createFreshgate, type Freshgate, type FreshgateOptions } from '@freshgate/pg';
import pg from 'pg';
import type { Cluster } from '../harness/index.js';

/** A secret for tests only. */
export const TEST_SECRET = 'freshgate-test-secret-0123456789abcdef';

/** A freshgate over a harness cluster, with a fast monitor so that tests do not wait long. */
export async function freshgateFor(
  cluster: Cluster,
  options: Partial<FreshgateOptions> = {},
): Promise<Freshgate> {
  const freshgate = await createFreshgate({
    primary: cluster.primary.url,
    replicas: Object.fromEntries(cluster.replicas.map((r) => [r.name, r.url])),
    secret: TEST_SECRET,
    budget: false,
    ...options,
    // Never resting: tests watch positions and lags without reading (monitor-idle.test.ts
    // covers the rest).
    monitor: { interval: 50, idle: false, ...options.monitor },
  });
  await freshgate.start();
  return freshgate;
}

/** Waits until the monitor reports every replica `healthy` (or `names` only). */
export async function untilHealthy(
  freshgate: Freshgate,
  names?: string[],
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const replicas = freshgate.topology.replicas.filter((r) => !names || names.includes(r.name));
    if (replicas.every((r) => r.health === 'healthy')) return;
    if (Date.now() > deadline) {
      throw new Error(
        `replicas not healthy: ${JSON.stringify(freshgate.topology.snapshot().replicas)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Bumps row 1 of `counter (id, v)` on the primary every ~2 ms, on a connection of its own,
 * until `stop()`: a value that only grows, for tests of reads that must never go back.
 */
export async function counterWriter(cluster: Cluster): Promise<{ stop(): Promise<void> }> {
  let writing = true;
  const client = new pg.Client(cluster.primary.connection);
  await client.connect();
  const loop = (async () => {
    while (writing) {
      await client.query('UPDATE counter SET v = v + 1 WHERE id = 1');
      await new Promise((r) => setTimeout(r, 2));
    }
    await client.end();
  })();
  return {
    stop: () => {
      writing = false;
      return loop;
    },
  };
}
