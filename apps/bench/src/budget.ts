/**
 * `pnpm --filter bench bench:budget`: the primary budget under lag storms, fixed rate against
 * the adaptive limit, at two primary sizes. Sessions write their own row and read it back
 * (read-your-writes, token-carrying) while one replica at a time is paused and the other
 * replays 800 ms late, so reads after a write fall back to the primary. The smaller primary is
 * the same server with a CPU-bound competing load on it (statements freshgate does not see).
 * The table shows the 503s (fallbacks shed), the primary's statement p99 as the server timed
 * it (a probe on its own connection) and the replica share. Writes its section into
 * docs/BENCHMARKS.md between the budget markers (`pnpm bench` keeps that section).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FreshnessUnavailableError } from '@freshgate/core';
import { type Cluster, startCluster } from '@freshgate/harness';
import { createFreshgate, type Freshgate, type FreshgateOptions } from '@freshgate/pg';
import pg from 'pg';
import { BUDGET_END, BUDGET_START } from './budget-markers.js';
import { loadAverage, machineInfo } from './machine.js';
import { sleep, summarize } from './stats.js';

const REPO_DIR = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const REPORT = join(REPO_DIR, 'docs', 'BENCHMARKS.md');
const SECONDS = Number(process.env.BUDGET_SECONDS ?? 10);
const SESSIONS = 60;
const WRITE_SHARE = 0.3;
/** Competing CPU-bound statements on the primary for the "busy primary" rows. */
const HOGS = 4;
const HOG_SQL = 'SELECT count(*) FROM generate_series(1, 2000000)';

const BUDGETS: [string, FreshgateOptions['budget']][] = [
  ['fixed `{ rate: 200, burst: 400 }`', { rate: 200, burst: 400 }],
  ['adaptive (default)', { mode: 'adaptive' }],
];

/** Server-side time of a small table read on the primary, every 20 ms, on its own connection. */
function probe(url: string) {
  const samples: number[] = [];
  let running = true;
  const client = new pg.Client({ connectionString: url });
  const done = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ ms: number }>(
        `SELECT extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000 AS ms
           FROM (SELECT count(*) FROM rows) AS t`,
      );
      samples.push(Number(rows[0]!.ms));
      await sleep(20);
    }
    await client.end();
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** One replica paused at a time, the other replaying 800 ms late, until `stop()`. */
function lagStorm(cluster: Cluster) {
  let storming = true;
  const [r1, r2] = cluster.replicas as [Cluster['replicas'][number], Cluster['replicas'][number]];
  const done = (async () => {
    for (let i = 0; storming; i++) {
      const [paused, late] = i % 2 === 0 ? [r1, r2] : [r2, r1];
      await Promise.all([paused.pause(), late.setApplyDelay(800)]);
      await sleep(1_500);
      await Promise.all([paused.resume(), late.setApplyDelay(0)]);
      await sleep(300);
    }
  })();
  return {
    stop: async () => {
      storming = false;
      await done;
    },
  };
}

/** CPU-bound statements on the primary from a pool freshgate does not see, until `stop()`. */
function competingLoad(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: HOGS });
  let running = true;
  const loops = Array.from({ length: HOGS }, async () => {
    while (running) await pool.query(HOG_SQL).catch(() => {});
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await pool.end();
    },
  };
}

async function load(freshgate: Freshgate) {
  let reads = 0;
  let replica = 0;
  let writes = 0;
  let writeErrors = 0;
  let shed = 0;
  let violations = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      const id = randomUUID();
      let token: string | undefined;
      let version = 0;
      while (performance.now() < until) {
        if (version === 0 || Math.random() < WRITE_SHARE) {
          try {
            const w = await freshgate.begin({ token });
            const { rows } = await w.db.query<{ version: number }>(
              'INSERT INTO rows VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET version = rows.version + 1 RETURNING version',
              [id],
            );
            version = rows[0]!.version;
            token = w.freshness.token ?? token;
            writes++;
          } catch {
            writeErrors++;
          }
          continue;
        }
        const r = await freshgate.begin({ token, contract: 'read-your-writes' });
        try {
          const { rows } = await r.db.query<{ version: number }>(
            'SELECT version FROM rows WHERE id = $1',
            [id],
          );
          reads++;
          if ((rows[0]?.version ?? 0) < version) violations++;
          if (r.freshness.servedBy?.startsWith('replica:')) replica++;
        } catch (error) {
          if (!(error instanceof FreshnessUnavailableError)) throw error;
          shed++;
          await sleep(10);
        }
      }
    }),
  );
  return { reads, replica, writes, writeErrors, shed, violations };
}

interface Row {
  primary: string;
  budget: string;
  requests: number;
  rate: number;
  shed: number;
  replicaShare: number;
  p99: number;
  baselineP99: number;
  writeErrors: number;
  violations: number;
  limit: string;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadAverage();
  const cluster = await startCluster({ replicas: 2 });
  const rows: Row[] = [];
  try {
    await cluster.primary.query('CREATE TABLE rows (id text PRIMARY KEY, version int NOT NULL)');
    await cluster.waitForReplicas();
    for (const busy of [false, true]) {
      for (const [name, budget] of BUDGETS) {
        const freshgate = await createFreshgate({
          primary: cluster.primary.url,
          replicas: Object.fromEntries(cluster.replicas.map((r) => [r.name, r.url])),
          secret: `bench-${randomUUID()}-${randomUUID()}`,
          monitor: { interval: 50 },
          budget,
        });
        await freshgate.start();
        await sleep(1_000);
        const p = probe(cluster.primary.url);
        const hog = busy ? competingLoad(cluster.primary.url) : undefined;
        await sleep(1_000);
        const baselineP99 = summarize(p.samples).p99;
        const from = p.samples.length;
        const storm = lagStorm(cluster);
        const t0 = performance.now();
        const limits: number[] = [];
        const watching = setInterval(() => limits.push(freshgate.status().budget!.limit), 200);
        const result = await load(freshgate);
        const seconds = (performance.now() - t0) / 1000;
        clearInterval(watching);
        await storm.stop();
        const p99 = summarize(p.samples.slice(from)).p99;
        await hog?.stop();
        await p.stop();
        await freshgate.close();
        const requests = result.reads + result.shed + result.writes + result.writeErrors;
        const row: Row = {
          primary: busy ? `busy (${HOGS} × CPU-bound competing statements)` : 'idle',
          budget: name,
          requests,
          rate: requests / seconds,
          shed: result.shed,
          replicaShare: result.reads ? result.replica / result.reads : 0,
          p99,
          baselineP99,
          writeErrors: result.writeErrors,
          violations: result.violations,
          limit:
            budget && 'mode' in budget && budget.mode === 'adaptive'
              ? `${Math.min(...limits)}–${Math.max(...limits)}`
              : '–',
        };
        rows.push(row);
        console.log(`[budget] ${JSON.stringify(row)}`);
        await Promise.all(cluster.replicas.map((r) => r.resume().then(() => r.setApplyDelay(0))));
        await cluster.waitForReplicas();
      }
    }
    const machine = machineInfo();
    const ms = (x: number) => x.toFixed(2);
    const lines = [
      BUDGET_START,
      '## 5. Primary budget under lag storms: fixed rate against the adaptive limit',
      '',
      `${SESSIONS} token-carrying sessions, in this process and without think time, write their own row (${WRITE_SHARE * 100} % of operations) and read it back (\`read-your-writes\`, fallback primary) for ${SECONDS} s, while one replica at a time is paused for 1.5 s and the other replays 800 ms late. "busy" is the same primary with ${HOGS} CPU-bound statements (\`${HOG_SQL}\`) running on it from another pool the whole time. _primary p99_ is the server-side time of a small table read on the primary (a probe on its own connection every 20 ms), beside its value in the second before the load. _503_ counts reads shed by the budget (\`no-replica-caught-up\` with \`Retry-After\`). Taken with \`pnpm --filter bench bench:budget\` on ${machine.cpuModel}, ${machine.cores} cores shared with other work (load average ${loadBefore} at start, ${loadAverage()} at the end), Node.js ${machine.node}, ${new Date(started).toISOString()}: the machine, not the primary, bounds the request rate here.`,
      '',
      '| primary | budget | requests | req/s | 503 | replica share | primary p99 ms (before) | adaptive limit (min–max) | write errors | stale reads |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.primary} | ${r.budget} | ${r.requests} | ${r.rate.toFixed(0)} | ${r.shed} | ${(100 * r.replicaShare).toFixed(1)} % | ${ms(r.p99)} (${ms(r.baselineP99)}) | ${r.limit} | ${r.writeErrors} | ${r.violations} |`,
      ),
      '',
      'A shed read is retried after 10 ms, so rows with many 503s count more requests. The _before_ value is the probe over the first second after start-up, noisier than the run itself. The adaptive limit measures primary statements from inside this process: where the process, not the primary, is the bottleneck (compare the req/s with the primary p99), its event-loop delay counts as primary latency (docs/operations.md, "Limits").',
      BUDGET_END,
    ];
    const report = readFileSync(REPORT, 'utf8');
    const section = lines.join('\n');
    const start = report.indexOf(BUDGET_START);
    const end = report.indexOf(BUDGET_END);
    const next =
      start >= 0 && end > start
        ? `${report.slice(0, start)}${section}${report.slice(end + BUDGET_END.length)}`
        : report.replace('\n## Reading', `\n${section}\n\n## Reading`);
    writeFileSync(REPORT, next);
    console.log(`[budget] wrote ${REPORT}`);
  } finally {
    await cluster.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
