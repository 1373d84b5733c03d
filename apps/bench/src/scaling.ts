import type { SelectionPolicy } from '@freshgate/core';
import type { Cluster } from '@freshgate/harness';
import { createFreshgate } from '@freshgate/pg';
import { type CountedPool, countedPool } from './counted-pool.js';
import { loadAverage } from './machine.js';
import { BENCH_SECRET } from './redis-client.js';
import { summarize } from './stats.js';

/** Settings of section 3. */
export interface ScalingSettings {
  /** Configurations to compare: replica count and freshgate's replica selection policy. */
  configs: { replicas: number; selection: SelectionPolicy }[];
  /** Concurrent clients, each running one read at a time. */
  clients: number;
  durationMs: number;
  /** Connections per node: a node's capacity is this many cores at most. */
  connectionsPerNode: number;
  /** Rows the CPU-bound read aggregates (`generate_series(1, n)`). */
  seriesRows: number;
}

export interface ScalingRow {
  replicas: number;
  selection: SelectionPolicy;
  readsPerSecond: number;
  /** Relative to the run with no replica. */
  speedup: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of reads each node served. */
  share: Record<string, number>;
  errors: number;
}

export interface ScalingResult {
  settings: ScalingSettings;
  /** One read alone on an idle primary, ms (median of 10). */
  queryMs: number;
  rows: ScalingRow[];
  loadBefore: number;
  loadAfter: number;
  seconds: number;
}

export const HEAVY_SQL = 'SELECT count(*) AS n FROM generate_series(1, $1::int)';

/**
 * Section 3: a CPU-bound read (aggregating `seriesRows` generated rows) through freshgate
 * under `read-your-writes`, with 0, 1 and 2 replicas, each node limited to
 * `connectionsPerNode` connections so that one node saturates before the machine does.
 */
export async function runScaling(
  cluster: Cluster,
  settings: ScalingSettings,
  log: (message: string) => void = () => {},
): Promise<ScalingResult> {
  const started = performance.now();
  const loadBefore = loadAverage();
  const alone: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await cluster.primary.query(HEAVY_SQL, [settings.seriesRows]);
    alone.push(performance.now() - t);
  }
  const rows: ScalingRow[] = [];
  for (const { replicas: count, selection } of settings.configs) {
    const pools: CountedPool[] = [
      countedPool('primary', {
        connectionString: cluster.primary.url,
        max: settings.connectionsPerNode,
      }),
      ...cluster.replicas
        .slice(0, count)
        .map((r) =>
          countedPool(r.name, { connectionString: r.url, max: settings.connectionsPerNode }),
        ),
    ];
    const [primary, ...replicas] = pools as [CountedPool, ...CountedPool[]];
    const fg = await createFreshgate({
      primary: primary.pool,
      replicas: Object.fromEntries(replicas.map((r) => [r.name, r.pool])),
      secret: BENCH_SECRET,
      budget: false,
      selection,
    });
    await fg.start();
    // Open every connection before measuring.
    await Promise.all(pools.map((p) => p.pool.query('SELECT 1')));
    for (const p of pools) p.reset();
    const latencies: number[] = [];
    const served: Record<string, number> = Object.fromEntries(pools.map((p) => [p.name, 0]));
    let errors = 0;
    const t0 = performance.now();
    const deadline = t0 + settings.durationMs;
    await Promise.all(
      Array.from({ length: settings.clients }, async () => {
        while (performance.now() < deadline) {
          const start = performance.now();
          try {
            const { db, freshness } = await fg.begin({ contract: 'read-your-writes' });
            await db.query(HEAVY_SQL, [settings.seriesRows]);
            latencies.push(performance.now() - start);
            const route = freshness.servedBy ?? 'unknown';
            const node = route === 'primary' ? 'primary' : route.replace(/^replica:/, '');
            served[node] = (served[node] ?? 0) + 1;
          } catch {
            errors++;
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await fg.close();
    await Promise.all(pools.map((p) => p.pool.end()));
    const total = latencies.length;
    const s = summarize(latencies);
    const readsPerSecond = total / seconds;
    rows.push({
      replicas: count,
      selection,
      readsPerSecond,
      speedup: readsPerSecond / (rows[0]?.readsPerSecond ?? readsPerSecond),
      p50Ms: s.p50,
      p99Ms: s.p99,
      share: Object.fromEntries(Object.entries(served).map(([k, v]) => [k, total ? v / total : 0])),
      errors,
    });
    log(`scaling: ${count} replica(s), ${selection}: ${readsPerSecond.toFixed(0)} reads/s`);
  }
  return {
    settings,
    queryMs: summarize(alone).p50,
    rows,
    loadBefore,
    loadAfter: loadAverage(),
    seconds: (performance.now() - started) / 1000,
  };
}
