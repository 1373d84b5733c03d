/**
 * `pnpm --filter bench bench:budget`: the primary budget under a lag storm, fixed beside
 * adaptive, on two primaries: one with room, and one of small capacity (a proxy in front of it
 * passes at most a few hundred statements a second and queues the rest, as a saturated server
 * does). Sessions write their own row and read it back at once while both replicas replay
 * late, so nearly every read wants the primary. Writes its section into docs/BENCHMARKS.md
 * between the budget markers (`pnpm bench` keeps that section).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FreshnessUnavailableError } from '@freshgate/core';
import { CapacityProxy, type Cluster, LatencyProbe, startCluster } from '@freshgate/harness';
import { createFreshgate, type Freshgate, type FreshgateOptions } from '@freshgate/pg';
import { BUDGET_END, BUDGET_START, withSection } from './barrier-markers.js';
import { loadAverage, machineInfo } from './machine.js';
import { sleep, summarize } from './stats.js';

const REPO_DIR = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const REPORT = join(REPO_DIR, 'docs', 'BENCHMARKS.md');
const SECONDS = Number(process.env.BUDGET_SECONDS ?? 8);
const SESSIONS = 48;
/** Statements a second the small primary passes. */
const SMALL_CAPACITY = 500;
/** Both replicas replay this late: a read right after a write finds neither caught up. */
const APPLY_DELAY_MS = 400;

interface Cell {
  primary: 'with room' | 'small';
  budget: keyof typeof BUDGETS;
  reads: number;
  writes: number;
  unavailable: number;
  failedWrites: number;
  replicaShare: number;
  readP99: number;
  primaryP99: number;
  baselineP99: number;
  limit: number | null;
}

/** Sessions that write their row and read it back at once, three reads a write. */
async function load(freshgate: Freshgate) {
  const latencies: number[] = [];
  let replica = 0;
  let unavailable = 0;
  let writes = 0;
  let failedWrites = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      const id = randomUUID();
      let token: string | undefined;
      for (let i = 0; performance.now() < until; i++) {
        if (i % 4 === 0) {
          const w = await freshgate.begin(token === undefined ? {} : { token });
          try {
            await w.db.query(
              'INSERT INTO rows VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET version = rows.version + 1',
              [id],
            );
            writes++;
            token = w.freshness.token ?? token;
          } catch {
            failedWrites++;
            await sleep(10);
          }
          continue;
        }
        const started = performance.now();
        const r = await freshgate.begin({
          contract: 'read-your-writes',
          ...(token === undefined ? {} : { token }),
        });
        try {
          await r.db.query('SELECT version FROM rows WHERE id = $1', [id]);
        } catch (error) {
          // The documented 503: the budget refused the fallback and no replica had caught up.
          if (!(error instanceof FreshnessUnavailableError)) throw error;
          unavailable++;
          // A client backs off after a 503 (Retry-After), rather than asking again at once.
          await sleep(100);
          continue;
        }
        latencies.push(performance.now() - started);
        if (r.freshness.servedBy?.startsWith('replica:')) replica++;
        await sleep(5);
      }
    }),
  );
  return {
    reads: latencies.length,
    writes,
    failedWrites,
    unavailable,
    replicaShare: latencies.length ? replica / latencies.length : 0,
    readP99: summarize(latencies).p99,
  };
}

const BUDGETS = {
  fixed: { rate: 200, burst: 400 },
  adaptive: {},
  'adaptive, floor 20': { floor: 20 },
} as const satisfies Record<string, FreshgateOptions['budget']>;

async function cell(
  cluster: Cluster,
  primary: Cell['primary'],
  budget: Cell['budget'],
): Promise<Cell> {
  const small =
    primary === 'small'
      ? await CapacityProxy.start(
          { host: cluster.primary.host, port: cluster.primary.port },
          SMALL_CAPACITY,
        )
      : undefined;
  const url = new URL(cluster.primary.url);
  if (small) url.port = String(small.port);
  const freshgate = await createFreshgate({
    primary: url.toString(),
    replicas: Object.fromEntries(cluster.replicas.map((r) => [r.name, r.url])),
    secret: `bench-${randomUUID()}-${randomUUID()}`,
    budget: BUDGETS[budget],
  });
  await freshgate.start();
  const probe = LatencyProbe.start(url.toString(), { intervalMs: 10 });
  try {
    await sleep(1_500);
    const baselineP99 = LatencyProbe.p99(probe.take());
    const result = await load(freshgate);
    const primaryP99 = LatencyProbe.p99(probe.take());
    return {
      primary,
      budget,
      ...result,
      primaryP99,
      baselineP99,
      limit: freshgate.status().budget.limit,
    };
  } finally {
    await probe.stop();
    await freshgate.close();
    await small?.close();
  }
}

/** What the table shows, in numbers from this run. */
function reading(cells: Cell[]): string[] {
  const find = (primary: Cell['primary'], budget: Cell['budget']) =>
    cells.find((c) => c.primary === primary && c.budget === budget);
  const roomFixed = find('with room', 'fixed');
  const roomAdaptive = find('with room', 'adaptive');
  const smallFixed = find('small', 'fixed');
  const smallLow = find('small', 'adaptive, floor 20');
  if (!roomFixed || !roomAdaptive || !smallFixed || !smallLow) return [];
  const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(1)} ×` : '–');
  return [
    `With room, the adaptive limit grew to ${Math.round(roomAdaptive.limit ?? 0)}/s: ${x(roomAdaptive.reads, roomFixed.reads)} the reads of the fixed budget, whose 200/s turned the rest away, with the primary's p99 at ${roomAdaptive.primaryP99.toFixed(1)} ms against ${roomFixed.primaryP99.toFixed(1)} ms. On the small primary the default (floor 200/s) admits what the fixed budget did; with the floor lowered to 20/s the limit was cut to ${Math.round(smallLow.limit ?? 0)}/s, the primary's p99 was ${smallLow.primaryP99.toFixed(1)} ms against ${smallFixed.primaryP99.toFixed(1)} ms under the fixed budget, and writes — never limited, they have nowhere else to go — went through ${x(smallLow.writes, smallFixed.writes)} as often.`,
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadAverage();
  const cluster = await startCluster({ replicas: 2 });
  try {
    await cluster.primary.query('CREATE TABLE rows (id text PRIMARY KEY, version int NOT NULL)');
    await cluster.waitForReplicas();
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
    const cells: Cell[] = [];
    for (const primary of ['with room', 'small'] as const) {
      for (const budget of Object.keys(BUDGETS) as Cell['budget'][]) {
        cells.push(await cell(cluster, primary, budget));
        console.log(`[budget] ${JSON.stringify(cells.at(-1))}`);
      }
    }
    const machine = machineInfo();
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const ms = (x: number) => x.toFixed(1);
    const lines = [
      BUDGET_START,
      '## 6. Primary budget: fixed and adaptive',
      '',
      `${SESSIONS} sessions write their own row and read it back three times at once (\`read-your-writes\`, 5 ms between operations, 100 ms after a 503) for ${SECONDS} s per cell, while both replicas replay ${APPLY_DELAY_MS} ms late: nearly every read finds no replica caught up and asks for the primary. _fixed_: \`budget: { rate: 200, burst: 400 }\` (the fixed bucket, the default before the adaptive one); _adaptive_: the default (\`budget: {}\`: floor 200/s, ceiling 5000/s); _adaptive, floor 20_: \`budget: { floor: 20 }\`, for a primary that may not take 200 fallbacks a second. _small_ primary: a proxy in front of it (on its own thread) passes at most ${SMALL_CAPACITY} statements a second and queues the rest, as a saturated server would (the load, the apps and the databases share this machine's cores, so a CPU-bound competing load would slow the load generator as much as the primary). The primary's latency is timed by a separate client (\`SELECT 1\` every 10 ms through the same address, on its own thread): _idle_ before the cell, _under load_ during it. Taken with \`pnpm --filter bench bench:budget\` on ${machine.cpuModel}, ${machine.cores} cores, Node.js ${machine.node}, ${new Date(started).toISOString()}, load average ${loadBefore} at start.`,
      '',
      '| primary | budget | reads | 503 | replica share | read p99 ms | writes | failed writes | primary p99 ms idle | primary p99 ms under load | limit at the end (fallbacks/s) |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...cells.map(
        (c) =>
          `| ${c.primary} | ${c.budget} | ${c.reads} | ${c.unavailable} | ${pct(c.replicaShare)} | ${ms(c.readP99)} | ${c.writes} | ${c.failedWrites} | ${ms(c.baselineP99)} | ${ms(c.primaryP99)} | ${c.limit === null ? '–' : Math.round(c.limit)} |`,
      ),
      '',
      ...reading(cells),
      BUDGET_END,
    ];
    const section = lines.join('\n');
    writeFileSync(
      REPORT,
      withSection(readFileSync(REPORT, 'utf8'), section, BUDGET_START, BUDGET_END),
    );
    console.log(`[budget] wrote ${REPORT}`);
  } finally {
    await cluster.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
