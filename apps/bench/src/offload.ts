import type { Cluster, Replica } from '@freshgate/harness';
import { createFreshgate, type Freshgate, type FreshgateOptions } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import pg from 'pg';
import { type CountedPool, countedPool } from './counted-pool.js';
import { idAllocator, type JourneyResult, type JourneySettings, runJourney } from './journey.js';
import { loadAverage } from './machine.js';
import { BENCH_SECRET, pinStoreRedis } from './redis-client.js';
import { sleep } from './stats.js';
import { createStrategy, type Nodes, STRATEGY_NAMES, type StrategyName } from './strategies.js';

/** The engine-wide `waitAllowance` of the freshgate-predicted strategy. */
export const PREDICTED_WAIT_ALLOWANCE = '300ms';

/** Injected replication lag: an apply delay on both replicas, or pause/resume bursts. */
export interface LagScenario {
  label: string;
  /** `recovery_min_apply_delay` of both replicas, ms. */
  delayMs: number;
  /** Pause one replica at a time for `pauseMs`, then let both run for `runMs`, alternating. */
  bursts?: { pauseMs: number; runMs: number };
  /** Overrides the settings' `afterWriteMs` (how soon reads follow a write). */
  afterWriteMs?: number;
}

/** Settings of section 2. */
export interface OffloadSettings {
  scenarios: LagScenario[];
  writeFractions: number[];
  strategies: readonly StrategyName[];
  sessions: number;
  cellMs: number;
  thinkMs: number;
  afterWriteMs: number;
  /** Pool size per node, the same for every strategy. */
  poolSize: number;
  /** Small commits per second on the primary throughout, so replicas sit at their steady lag. */
  backgroundWritesPerSecond: number;
}

/** One strategy × lag × write fraction. */
export interface OffloadCell extends JourneyResult {
  strategy: StrategyName;
  scenario: string;
  writeFraction: number;
  /** Primary statements per second relative to all-primary in the same scenario and mix. */
  primaryRelative: number | undefined;
  /** Replica health as freshgate's monitor saw it when the cell started. */
  replicaHealth: string;
}

/** Everything section 2 produced. */
export interface OffloadResult {
  settings: OffloadSettings;
  cells: OffloadCell[];
  loadBefore: number;
  loadAfter: number;
  seconds: number;
}

const SEEDS_PER_SESSION = 3;

/**
 * Runs a replica control (apply delay, pause, resume) again when it fails: its connection
 * to a replica can be cancelled by a recovery conflict (SQLSTATE 40001) while the replica
 * replays cleanup of rows the workload just updated, which says nothing about the control.
 */
async function control(run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(200 * attempt);
    }
  }
}

/**
 * Opens every connection each pool may hold. node-postgres opens them on demand, so a cell
 * whose first burst finds a pool empty waits for up to `max` connection starts at once (20
 * took about 400 ms here): a strategy whose pools sat idle in the cells before (the two
 * instances' pools, each used by one strategy only) would pay that in its read p99, and
 * the others would not. A connection that cannot be opened is reported and left to the cell.
 */
async function fill(pools: readonly pg.Pool[], log: (message: string) => void): Promise<void> {
  await Promise.all(
    pools.map(async (pool) => {
      const clients = await Promise.allSettled(
        Array.from({ length: pool.options.max ?? 10 }, () => pool.connect()),
      );
      for (const client of clients) {
        if (client.status === 'fulfilled') client.value.release();
        else log(`offload: a pool could not open a connection before a cell: ${client.reason}`);
      }
    }),
  );
}

function backgroundWriter(url: string, perSecond: number) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  let running = true;
  const done = (async () => {
    if (perSecond <= 0) return;
    await client.connect();
    while (running) {
      await client.query('UPDATE bench_ticks SET at = now() WHERE id = 1').catch(() => {});
      await sleep(1000 / perSecond);
    }
    await client.end().catch(() => {});
  })();
  // Awaited only when the writer is stopped, cells later: a failure (the primary refusing the
  // connection) is held until then instead of surfacing as an unhandled rejection.
  done.catch(() => {});
  return async () => {
    running = false;
    await done;
  };
}

function burster(replicas: Replica[], bursts: { pauseMs: number; runMs: number }) {
  let running = true;
  // Sleeps in slices so that stopping does not wait for a long pause to end.
  const hold = async (ms: number) => {
    const until = performance.now() + ms;
    while (running && performance.now() < until)
      await sleep(Math.min(50, until - performance.now()));
  };
  const done = (async () => {
    for (let i = 0; running; i++) {
      const replica = replicas[i % replicas.length] as Replica;
      await control(() => replica.pause());
      await hold(bursts.pauseMs);
      await control(() => replica.resume());
      await hold(bursts.runMs);
    }
  })();
  // Held until stopped, like the background writer's.
  done.catch(() => {});
  return async () => {
    running = false;
    await done;
    await Promise.all(replicas.map((r) => control(() => r.resume())));
  };
}

function healthLine(fg: Freshgate): string {
  return fg
    .status()
    .replicas.map((r) => `${r.name}:${r.health}`)
    .join(' ');
}

/** Waits until every instance's monitor sees every replica healthy (each has its own view). */
async function waitHealthy(gates: readonly Freshgate[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const healthy = (fg: Freshgate) =>
    fg.status().replicas.every((r) => r.health === 'healthy' && r.circuit === 'closed');
  while (performance.now() < deadline) {
    if (gates.every(healthy)) return;
    await sleep(100);
  }
}

/**
 * Section 2: the journey workload per lag scenario, write fraction and strategy, on the same
 * pools (the two-instance strategy on two pools per node that split their size). Lag is set
 * once per scenario and a background writer keeps it steady, so every strategy of a scenario
 * meets the same replicas.
 */
export async function runOffload(
  cluster: Cluster,
  settings: OffloadSettings,
  log: (message: string) => void = () => {},
): Promise<OffloadResult> {
  const started = performance.now();
  const loadBefore = loadAverage();
  // Pools keep their connections (no idle timeout) and are filled before each cell.
  const poolConfig = (connectionString: string) => ({
    connectionString,
    max: settings.poolSize,
    idleTimeoutMillis: 0,
  });
  const nodes: Nodes = {
    primary: countedPool('primary', poolConfig(cluster.primary.url)),
    replicas: cluster.replicas.map((r) => countedPool(r.name, poolConfig(r.url))),
  };
  const redis = pinStoreRedis(cluster.redisUrl);
  await redis.connect();
  const gate = async (
    options: Pick<FreshgateOptions, 'waitAllowance'> = {},
    pool: (node: CountedPool) => pg.Pool = (node) => node.pool,
  ) => {
    const created = await createFreshgate({
      primary: pool(nodes.primary),
      replicas: Object.fromEntries(nodes.replicas.map((n) => [n.name, pool(n)])),
      secret: BENCH_SECRET,
      pinStore: redisPinStore(redis),
      // No primary budget: the baseline strategies have none, and the question here is how
      // many reads each strategy must send to the primary, not how freshgate sheds them.
      budget: false,
      ...options,
    });
    await created.start();
    return created;
  };
  const fg = await gate();
  // The same, with only an engine-wide wait allowance: the predicted wait (freshgate-predicted).
  const predicted = await gate({ waitAllowance: PREDICTED_WAIT_ALLOWANCE });
  // Two app processes behind a balancer (freshgate-2-instances), each with its own engine,
  // monitor and pools. Sharing the counted pools would keep engines and monitors apart but not
  // connections: a pool's queue belongs to one process (a burst on one instance does not queue
  // the other's requests), and the engine reads its own (the adaptive budget, `status().pools`).
  // Their pools count into the shared counters, so the primary stmt/s column stays comparable,
  // and split the pool size, so the two together have the connections per node of one instance.
  const instancePools: pg.Pool[] = [];
  const instance = (max: number) =>
    gate({}, (node) => {
      const pool = node.another(Math.max(1, max));
      instancePools.push(pool);
      return pool;
    });
  const instances = [
    await instance(Math.ceil(settings.poolSize / 2)),
    await instance(Math.floor(settings.poolSize / 2)),
  ];
  const gates = [fg, predicted, ...instances];
  const pools = [...[nodes.primary, ...nodes.replicas].map((n) => n.pool), ...instancePools];
  // Every session of every cell starts with records from an earlier visit, written now and
  // replicated before any lag is injected.
  const cellCount =
    settings.scenarios.length * settings.writeFractions.length * settings.strategies.length;
  const seedCount = cellCount * settings.sessions * SEEDS_PER_SESSION;
  await cluster.primary.query(
    `INSERT INTO journey_items SELECT i, ((i - 1) / ${SEEDS_PER_SESSION}) % $2, 1, 'x' FROM generate_series(1, $1::int) AS i`,
    [seedCount, settings.sessions],
  );
  await cluster.waitForReplicas();
  const seedsOf = (cell: number) => (owner: number) =>
    Array.from(
      { length: SEEDS_PER_SESSION },
      (_, j) => (cell * settings.sessions + owner) * SEEDS_PER_SESSION + j + 1,
    );
  const stopWriter = backgroundWriter(cluster.primary.url, settings.backgroundWritesPerSecond);
  const nextId = idAllocator(seedCount + 1);
  const cells: OffloadCell[] = [];
  let cellNumber = 0;
  try {
    for (const scenario of settings.scenarios) {
      await Promise.all(
        cluster.replicas.map((r) => control(() => r.setApplyDelay(scenario.delayMs))),
      );
      // Let replicas reach their steady lag, and a monitor that saw them lagging see them
      // healthy again (its hysteresis needs 5 s under 1 s of lag).
      await sleep(Math.max(500, scenario.delayMs + 1_000));
      if (scenario.delayMs < 1_000) await waitHealthy(gates, 10_000);
      const stopBursts = scenario.bursts ? burster(cluster.replicas, scenario.bursts) : undefined;
      try {
        for (const writeFraction of settings.writeFractions) {
          const baseline = new Map<string, number>();
          for (const name of settings.strategies) {
            const strategy = createStrategy(
              name,
              nodes,
              name === 'freshgate-predicted'
                ? [predicted]
                : name === 'freshgate-2-instances'
                  ? instances
                  : [fg],
            );
            const journey: JourneySettings = {
              sessions: settings.sessions,
              durationMs: settings.cellMs,
              thinkMs: settings.thinkMs,
              afterWriteMs: scenario.afterWriteMs ?? settings.afterWriteMs,
              writeFraction,
            };
            await fill(pools, log);
            const replicaHealth = healthLine(fg);
            const cell = cellNumber++;
            const result = await runJourney(
              strategy,
              nodes,
              journey,
              nextId,
              `c${cell}-`,
              seedsOf(cell),
            );
            if (name === 'all-primary') baseline.set('rate', result.primaryStatementsPerSecond);
            const base = baseline.get('rate');
            cells.push({
              ...result,
              strategy: name,
              scenario: scenario.label,
              writeFraction,
              primaryRelative: base ? result.primaryStatementsPerSecond / base : undefined,
              replicaHealth,
            });
            log(
              `offload: ${scenario.label} w=${writeFraction} ${name}: replica ${(100 * result.replicaShare).toFixed(1)} %, RYW ${result.readYourWritesViolations}, mono ${result.monotonicViolations}, ${result.operationsPerSecond.toFixed(0)} ops/s`,
            );
          }
        }
      } finally {
        await stopBursts?.();
      }
    }
  } finally {
    await stopWriter();
    await Promise.all(cluster.replicas.map((r) => control(() => r.setApplyDelay(0))));
    await Promise.all(gates.map((g) => g.close()));
    await Promise.all(pools.map((p) => p.end()));
    redis.disconnect();
  }
  return {
    settings,
    cells,
    loadBefore,
    loadAfter: loadAverage(),
    seconds: (performance.now() - started) / 1000,
  };
}

export { STRATEGY_NAMES };
