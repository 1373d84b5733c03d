/**
 * `pnpm --filter bench bench:barrier`: barrier reads with the pin store down. Session-key-only
 * clients (no token: the pin store is all the server knows of them) write and read their own
 * rows while Redis is stopped; the table shows where their reads went and how long they took,
 * beside the same load with Redis up. It also measures the two ways of observing the primary's
 * position after a request arrived (waiting for the monitor's next sample, or one
 * `pg_current_wal_lsn()`). Writes its section into docs/BENCHMARKS.md between the barrier
 * markers (`pnpm bench` keeps that section).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ContractInput,
  FreshnessUnavailableError,
  METRIC_BARRIERS,
  type TelemetryOptions,
} from '@freshgate/core';
import { startCluster } from '@freshgate/harness';
import { createFreshgate, type Freshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import { Redis } from 'ioredis';
import pg from 'pg';
import { BARRIER_END, BARRIER_START, withSection } from './barrier-markers.js';
import { loadAverage, machineInfo } from './machine.js';
import { sleep, summarize } from './stats.js';

const REPO_DIR = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const REPORT = join(REPO_DIR, 'docs', 'BENCHMARKS.md');
const SECONDS = Number(process.env.BARRIER_SECONDS ?? 6);
const SESSIONS = 16;
const WRITE_SHARE = 0.1;
/** Pause after each read: a user-paced load, not a saturating one. */
const THINK_MS = 20;

function meter() {
  const counts = new Map<string, number>();
  const instrument = (name: string) => ({
    add: (value: number, attributes: Record<string, unknown> = {}) => {
      const key = `${name}|${String(attributes['freshgate.barrier.source'] ?? '')}`;
      counts.set(key, (counts.get(key) ?? 0) + value);
    },
    record: () => {},
  });
  return {
    meter: { createCounter: instrument, createHistogram: instrument } as unknown as NonNullable<
      TelemetryOptions['meter']
    >,
    take(): Record<string, number> {
      const out: Record<string, number> = {};
      for (const [key, n] of counts) {
        const [name, source] = key.split('|');
        if (name === METRIC_BARRIERS) out[source as string] = n;
      }
      counts.clear();
      return out;
    },
  };
}

interface Cell {
  store: 'up' | 'down';
  delayMs: number;
  contract: string;
  reads: number;
  replicaShare: number;
  p50: number;
  p99: number;
  violations: number;
  unavailable: number;
  barriers: Record<string, number>;
}

/** Session-key-only clients: write their row now and then, read it back otherwise. */
async function load(freshgate: Freshgate, contract: ContractInput) {
  const latencies: number[] = [];
  let replica = 0;
  let violations = 0;
  let unavailable = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      const sessionKey = `bench-${randomUUID()}`;
      const id = randomUUID();
      let version = 0;
      while (performance.now() < until) {
        if (version === 0 || Math.random() < WRITE_SHARE) {
          const w = await freshgate.begin({ sessionKey });
          const { rows } = await w.db.query<{ version: number }>(
            `INSERT INTO rows VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET version = rows.version + 1 RETURNING version`,
            [id],
          );
          version = rows[0]!.version;
          continue;
        }
        const started = performance.now();
        const r = await freshgate.begin({ sessionKey, contract });
        let rows: { version: number }[];
        try {
          ({ rows } = await r.db.query<{ version: number }>(
            'SELECT version FROM rows WHERE id = $1',
            [id],
          ));
        } catch (error) {
          // The documented 503: the budget was spent and no replica could serve the read.
          if (!(error instanceof FreshnessUnavailableError)) throw error;
          unavailable++;
          await sleep(10);
          continue;
        }
        latencies.push(performance.now() - started);
        await sleep(THINK_MS * (0.5 + Math.random()));
        if ((rows[0]?.version ?? 0) < version) violations++;
        if (r.freshness.servedBy?.startsWith('replica:')) replica++;
      }
    }),
  );
  const summary = summarize(latencies);
  return {
    reads: latencies.length,
    replicaShare: latencies.length ? replica / latencies.length : 0,
    p50: summary.p50,
    p99: summary.p99,
    violations,
    unavailable,
  };
}

/** End-to-end time to a primary position observed after `now`, both ways. */
async function positionCost(freshgate: Freshgate, url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const query: number[] = [];
  const monitor: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t0 = performance.now();
    await client.query('SELECT pg_current_wal_lsn()');
    query.push(performance.now() - t0);
    t0 = performance.now();
    // The monitor stamps samples with the engine clock (Date.now() by default).
    const since = Date.now();
    while ((freshgate.monitor.primarySample()?.sentAt ?? 0) < since) await sleep(1);
    monitor.push(performance.now() - t0);
    await sleep(Math.random() * 20);
  }
  await client.end();
  return { query: summarize(query), monitor: summarize(monitor) };
}

/** Barriers with Redis up mean pin calls failed or timed out anyway: say so next to the table. */
function upNote(cells: Cell[]): string[] {
  const up = cells.filter((c) => c.store === 'up');
  const barriers = up.reduce((n, c) => n + Object.values(c.barriers).reduce((a, b) => a + b, 0), 0);
  if (barriers === 0) return [];
  return [
    `With Redis up, ${barriers} of ${up.reduce((n, c) => n + c.reads, 0)} reads still took a barrier: a pin call of their session failed or exceeded the 50 ms timeout under the machine's load, so its pin could not be trusted for a pin lifetime.`,
    '',
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadAverage();
  const cluster = await startCluster({ replicas: 2, redis: true });
  const redis = new Redis(cluster.redisUrl, {
    enableOfflineQueue: false,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(times * 50, 200),
    lazyConnect: true,
  });
  redis.on('error', () => {});
  const telemetry = meter();
  let freshgate: Freshgate | undefined;
  try {
    await redis.connect();
    await cluster.primary.query('CREATE TABLE rows (id text PRIMARY KEY, version int NOT NULL)');
    await cluster.waitForReplicas();
    freshgate = await createFreshgate({
      primary: cluster.primary.url,
      replicas: Object.fromEntries(cluster.replicas.map((r) => [r.name, r.url])),
      secret: `bench-${randomUUID()}-${randomUUID()}`,
      pinStore: redisPinStore(redis),
      telemetry: { meter: telemetry.meter },
    });
    await freshgate.start();
    await sleep(1_000);
    const cost = await positionCost(freshgate, cluster.primary.url);
    const cells: Cell[] = [];
    const contracts: [string, ContractInput][] = [
      ['`read-your-writes`', 'read-your-writes'],
      [
        '`read-your-writes`, `{ wait: 50 }`',
        { contract: 'read-your-writes', fallback: [{ wait: 50 }, 'primary'] },
      ],
    ];
    for (const delayMs of [0, 50]) {
      await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(delayMs)));
      for (const store of ['up', 'down'] as const) {
        if (store === 'down') await cluster.redis!.stop();
        for (const [name, contract] of contracts) {
          telemetry.take();
          await load(freshgate, contract); // warm-up, not counted
          telemetry.take();
          const result = await load(freshgate, contract);
          cells.push({ store, delayMs, contract: name, ...result, barriers: telemetry.take() });
          console.log(`[barrier] ${JSON.stringify(cells.at(-1))}`);
        }
        if (store === 'down') {
          await cluster.redis!.start();
          await sleep(1_000);
        }
      }
    }
    const machine = machineInfo();
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const ms = (x: number) => x.toFixed(1);
    const lines = [
      BARRIER_START,
      '## 4. Barrier reads with the pin store down',
      '',
      `${SESSIONS} session-key-only clients (no token: only the pin store knows their last write) write their own row (${WRITE_SHARE * 100} % of operations) and read it back (${THINK_MS} ms of think time on average after each read), ${SECONDS} s per cell after a warm-up, with Redis up (pins) and stopped (every read takes a barrier: the primary's position observed after the request arrived). Replicas replay with the apply delay shown. A violation is a read that missed the client's own last write. Taken with \`pnpm --filter bench bench:barrier\` on ${machine.cpuModel}, ${machine.cores} cores, Node.js ${machine.node}, ${new Date(started).toISOString()}, load average ${loadBefore} at start.`,
      '',
      '| apply delay | pin store | contract | reads | replica share | p50 ms | p99 ms | violations | 503 | barrier positions (monitor / query / shared) |',
      '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...cells.map(
        (c) =>
          `| ${c.delayMs} ms | ${c.store} | ${c.contract} | ${c.reads} | ${pct(c.replicaShare)} | ${ms(c.p50)} | ${ms(c.p99)} | ${c.violations} | ${c.unavailable} | ${c.barriers.monitor ?? 0} / ${c.barriers.query ?? 0} / ${c.barriers.shared ?? 0} |`,
      ),
      '',
      ...upNote(cells),
      `Observing the primary's position after a moment, end to end (200 samples): one \`pg_current_wal_lsn()\` round trip p50 ${ms(cost.query.p50)} ms, p99 ${ms(cost.query.p99)} ms; waiting for the monitor's next sample (default 100 ms interval) p50 ${ms(cost.monitor.p50)} ms, p99 ${ms(cost.monitor.p99)} ms. freshgate uses a sample when one was taken after the request's first statement, otherwise one shared round trip (docs/degraded-modes.md).`,
      BARRIER_END,
    ];
    const section = lines.join('\n');
    writeFileSync(
      REPORT,
      withSection(readFileSync(REPORT, 'utf8'), section, BARRIER_START, BARRIER_END),
    );
    console.log(`[barrier] wrote ${REPORT}`);
  } finally {
    await freshgate?.close();
    redis.disconnect();
    await cluster.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
