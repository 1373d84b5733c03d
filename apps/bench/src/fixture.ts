import { type Cluster, startCluster } from '@freshgate/harness';

/** Tables every section uses, created on the primary and replayed by the replicas. */
export async function prepareSchema(cluster: Cluster, items: number): Promise<void> {
  await cluster.primary.query(`
    DROP TABLE IF EXISTS bench_items, journey_items;
    CREATE TABLE bench_items (id int PRIMARY KEY, owner int NOT NULL, version int NOT NULL, body text NOT NULL);
    CREATE TABLE journey_items (id int PRIMARY KEY, owner int NOT NULL, version int NOT NULL, body text NOT NULL);
    CREATE INDEX journey_items_owner ON journey_items (owner);
    CREATE TABLE bench_ticks (id int PRIMARY KEY, at timestamptz NOT NULL);
    INSERT INTO bench_ticks VALUES (1, now());`);
  await cluster.primary.query(
    `INSERT INTO bench_items SELECT i, i % 100, 1, repeat('x', 64) FROM generate_series(1, $1) AS i`,
    [items],
  );
  await cluster.primary.query('ANALYZE');
  await cluster.waitForReplicas();
}

/** A throwaway primary + 2 streaming replicas + Redis with the benchmark tables. */
export async function startBenchCluster(items: number): Promise<Cluster> {
  const cluster = await startCluster({ replicas: 2, redis: true });
  try {
    await prepareSchema(cluster, items);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
