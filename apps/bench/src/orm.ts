// The routed pool's per-request cost: the same ORM read by primary key, once on a plain
// pg.Pool to a replica and once on a RoutedPool inside a freshgate request (engine begin,
// routing decision, one replica read). Run: `pnpm --filter bench bench:orm`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '@freshgate/harness';
import { createFreshgate, type Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { ORM_END, ORM_START, withSection } from './barrier-markers.js';
import { loadAverage, machineInfo } from './machine.js';

const REPO_DIR = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const REPORT = join(REPO_DIR, 'docs', 'BENCHMARKS.md');

const ROWS = 1_000;
const REQUESTS = Number(process.env.ORM_BENCH_REQUESTS ?? 3_000);
const ROUNDS = Number(process.env.ORM_BENCH_ROUNDS ?? 5);
const CONCURRENCY = 8;

const notes = pgTable('notes', { id: text('id').primaryKey(), body: text('body').notNull() });
interface Database {
  notes: { id: string; body: string };
}

type Read = (id: string) => Promise<unknown>;

function reads(pool: pg.Pool): { drizzle: Read; kysely: Read } {
  const d = drizzle({ client: pool });
  const k = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  // Async functions: ORM builders are lazy thenables that run when awaited, which must happen
  // inside the request's context.
  return {
    drizzle: async (id) => d.select().from(notes).where(eq(notes.id, id)),
    kysely: async (id) => k.selectFrom('notes').selectAll().where('id', '=', id).executeTakeFirst(),
  };
}

/**
 * Wall-clock and CPU microseconds of this process per request, over `REQUESTS` requests with
 * `CONCURRENCY` in flight. The CPU time is what the routed pool adds to the application's
 * process; it depends much less than wall-clock time on what else runs on the machine.
 */
async function measure(request: (i: number) => Promise<unknown>): Promise<[number, number]> {
  let next = 0;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) await request(next++);
    }),
  );
  const used = process.cpuUsage(cpu);
  return [
    Number(process.hrtime.bigint() - started) / 1_000 / REQUESTS,
    (used.user + used.system) / REQUESTS,
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const started = new Date().toISOString();
  const cluster = await startCluster({ replicas: 1 });
  let gate: Freshgate | undefined;
  const plain = new pg.Pool({ connectionString: cluster.replicas[0]!.url, max: CONCURRENCY });
  // An idle client's error (the cluster stopping right after `plain.end()`) must not crash.
  plain.on('error', () => {});
  try {
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL)');
    await cluster.primary.query(
      `INSERT INTO notes SELECT g::text, 'note ' || g FROM generate_series(1, ${ROWS}) g`,
    );
    await cluster.waitForReplicas();
    gate = await createFreshgate({
      primary: cluster.primary.url,
      replicas: { r1: cluster.replicas[0]!.url },
      secret: 'bench-secret-0123456789abcdef0123456789',
      poolSize: CONCURRENCY,
      budget: false,
    });
    await gate.start();
    const direct = reads(plain);
    const routed = reads(new RoutedPool(gate));
    const g = gate;
    const results: string[] = [];
    for (const orm of ['drizzle', 'kysely'] as const) {
      const onPlain: [number, number][] = [];
      const onRouted: [number, number][] = [];
      // Warm both paths (connections, prepared parsers, JIT), then interleave the rounds.
      await measure((i) => direct[orm](String((i % ROWS) + 1)));
      await measure(async (i) => (await g.begin()).run(() => routed[orm](String((i % ROWS) + 1))));
      for (let round = 0; round < ROUNDS; round++) {
        onPlain.push(await measure((i) => direct[orm](String((i % ROWS) + 1))));
        onRouted.push(
          await measure(async (i) => {
            const req = await g.begin();
            await req.run(() => routed[orm](String((i % ROWS) + 1)));
            if (!req.freshness.servedBy?.startsWith('replica:'))
              throw new Error(`read went to ${req.freshness.servedBy}`);
          }),
        );
      }
      const wall = [median(onPlain.map((x) => x[0])), median(onRouted.map((x) => x[0]))];
      const cpu = [median(onPlain.map((x) => x[1])), median(onRouted.map((x) => x[1]))];
      const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
      results.push(
        `| ${orm} | ${cpu[0]!.toFixed(1)} | ${cpu[1]!.toFixed(1)} | ${signed(cpu[1]! - cpu[0]!)} | ${wall[0]!.toFixed(1)} | ${wall[1]!.toFixed(1)} | ${signed(wall[1]! - wall[0]!)} |`,
      );
    }
    const m = machineInfo();
    const section = [
      ORM_START,
      '## 5. ORM routed pool overhead',
      '',
      `The same ORM read by primary key, on a plain \`pg.Pool\` to the replica and on a \`RoutedPool\` inside a freshgate request (\`gate.begin()\`, the routing decision, the read on the replica; no HTTP). ${REQUESTS} requests per round, ${CONCURRENCY} in flight, ${ROUNDS} interleaved rounds per variant, medians of the per-round mean. CPU is the benchmark process's own CPU time per request (ORM, node-postgres and freshgate; the servers run in other processes): what the routed pool costs the application, and much less sensitive than wall-clock time to other load on the machine. Taken with \`pnpm --filter bench bench:orm\` on ${m.cpuModel}, ${m.cores} cores, ${m.os}, Node.js ${m.node}, PostgreSQL from the test harness (loopback), ${started}, load average ${loadBefore} at start.`,
      '',
      '| ORM | plain pg.Pool, CPU µs/request | RoutedPool, CPU µs/request | added CPU µs | plain pg.Pool, wall µs/request | RoutedPool, wall µs/request | added wall µs |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...results,
      ORM_END,
    ].join('\n');
    writeFileSync(REPORT, withSection(readFileSync(REPORT, 'utf8'), section, ORM_START, ORM_END));
    try {
      execFileSync(join(REPO_DIR, 'node_modules', '.bin', 'biome'), ['format', '--write', REPORT], {
        stdio: 'ignore',
      });
    } catch {}
    console.log(section);
  } finally {
    await plain.end();
    await gate?.close();
    await cluster.stop();
  }
}

await main();
