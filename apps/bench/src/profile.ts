/**
 * `pnpm --filter bench bench:profile`: where a request's CPU goes with freshgate mounted.
 * Section 1's freshgate server (built output, one framework at a time, pinned to a core) is
 * loaded by section 1's load generator on another core; the V8 sampling profiler runs in the
 * server only while one variant's load runs, and the profile's self time is split by owner
 * (freshgate, framework, pg, Node.js, V8) and by frame, per request. Writes its section into
 * docs/BENCHMARKS.md between the profile markers (`pnpm bench` keeps that section) and the
 * numbers into `results/profile.json`; `PROFILE_BEFORE=<an earlier profile.json>` adds that
 * run's numbers beside this one's (before and after a change, on one machine);
 * `PROFILE_FROM=<a profile.json>` renders that run again and measures nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROFILE_END, PROFILE_START, withSection } from './barrier-markers.js';
import { lines, spawnTs } from './child.js';
import {
  type CpuProfile,
  type FrameOwner,
  type ProfileSummary,
  summarizeProfile,
} from './cpu-profile.js';
import { startBenchCluster } from './fixture.js';
import type { LoadPlan, LoadResult, LoadRun } from './load-worker.js';
import { cpuPinning, loadAverage, machineInfo } from './machine.js';
import { benchClients, startServer, VARIANTS } from './overhead.js';
import type { ServerConfig } from './overhead-server.js';
import { BENCH_SECRET } from './redis-client.js';
import type { StartCost, StartCostConfig } from './start-cost.js';

const APP_DIR = resolve(fileURLToPath(import.meta.url), '..', '..');
const REPO_DIR = resolve(APP_DIR, '..', '..');
const REPORT = join(REPO_DIR, 'docs', 'BENCHMARKS.md');
const RESULTS = join(APP_DIR, 'results', 'profile.json');
/** The published section's numbers, beside docs/BENCHMARKS.md. */
const PUBLISHED = join(REPO_DIR, 'docs', 'benchmarks-profile.json');
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 6);
const WARMUP_SECONDS = 3;
const ITEMS = 10_000;
/** The variants profiled: no token, a cached token, a session pin read, and a routed SELECT. */
const PROFILED = ['nodb-none', 'nodb-token', 'nodb-session', 'item-token'] as const;
const FRAMEWORKS = ['fastify', 'express'] as const;
const TOP_FRAMES = 8;
/** The changes the published before/after compares (rewrite with the next comparison). */
const CUTS = [
  "a cached token's expiry is checked against the process clock read at most every 100 ms (`coarseNow()` in `@freshgate/core`) instead of a `Date.now()` per request: the `now core/dist/clock.js` frame of the cached-token rows",
];

interface ProfiledRun extends ProfileSummary {
  framework: string;
  variant: string;
  requestsPerSecond: number;
}

interface ProfileResults {
  taken: string;
  node: string;
  /** The machine's 1-minute load average when the run ended (absent in older runs). */
  loadAverage?: number;
  runs: ProfiledRun[];
  /** What one request start makes, counted (absent in runs made before it was). */
  starts?: StartCost[];
}

/** Section 1's load generator for one variant: a warm-up, then the run profiled. */
function loadOnce(
  plan: Omit<LoadPlan, 'runs'> & { runs: LoadRun[] },
  pin: string[],
  marks: { start: () => Promise<void>; end: () => Promise<void> },
) {
  const child = spawnTs('./load-worker.ts', { BENCH_LOAD: JSON.stringify(plan) }, pin);
  const measured = plan.runs.at(-1)?.key;
  let pending = Promise.resolve();
  let stderr = '';
  lines(child.stderr, (line) => {
    if (line === `start ${measured}`) pending = pending.then(marks.start);
    else if (line === `end ${measured}`) pending = pending.then(marks.end);
    else if (!/^(begin|start|end) /.test(line)) stderr += `${line}\n`;
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  return new Promise<LoadResult[]>((done, fail) => {
    child.once('exit', (code) => {
      pending.then(() => {
        if (code !== 0) fail(new Error(`load worker exited (${code}): ${stderr}`));
        else done(JSON.parse(stdout) as LoadResult[]);
      }, fail);
    });
  });
}

/** Sends a command to a server's stdin and waits for its JSON answer. */
function commander(server: Awaited<ReturnType<typeof startServer>>) {
  const waiting: ((answer: Record<string, unknown>) => void)[] = [];
  // Attached after startServer read the ports line: every line from here on is an answer.
  lines(server.child.stdout, (line) => waiting.shift()?.(JSON.parse(line)));
  return (command: string) =>
    new Promise<void>((done, fail) => {
      waiting.push((answer) =>
        answer.error ? fail(new Error(`${command}: ${answer.error}`)) : done(),
      );
      server.child.stdin?.write(`${command}\n`);
    });
}

/** Runs `start-cost.ts` on the build output and returns what it counted. */
async function startCost(config: StartCostConfig): Promise<StartCost[]> {
  const child = spawnTs('./start-cost.ts', { BENCH_START_COST: JSON.stringify(config) }, [], {
    built: true,
    // No scavenge inside a measured loop: 10 000 starts of about 1 kB each fit in 64 MB.
    nodeFlags: ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`start-cost exited (${code}): ${stderr}`);
  return JSON.parse(stdout) as StartCost[];
}

/** Section 7's table of request starts, counted (before → after when the earlier run has them). */
function renderStarts(results: ProfileResults, before: ProfileResults | undefined): string[] {
  const starts = results.starts;
  if (!starts) return [];
  const promises = (s: StartCost | undefined) => s?.resources.PROMISE ?? (s ? 0 : undefined);
  const others = (s: StartCost) =>
    Object.entries(s.resources)
      .filter(([type]) => type !== 'PROMISE')
      .map(([type, n]) => `${n} ${type}`)
      .join(', ') || 'none';
  const was = (s: StartCost) => before?.starts?.find((b) => b.mode === s.mode);
  const count = (x: number | undefined) => (x === undefined ? '–' : String(x));
  const arrow = (b: number | undefined, a: number | undefined) =>
    before?.starts ? `${count(b)} → ${count(a)}` : count(a);
  return [
    '',
    `Starting one request through the adapter kit, as the adapters do (build output, Node.js ${results.node}, \`start-cost.ts\`), counted rather than timed: the async resources an \`async_hooks\` init hook sees per start, and the bytes allocated per start (new space, no scavenge in between; for the starts that need no I/O). Counts do not move with the machine's load; on Node.js 20 each promise costs more while AsyncLocalStorage is in use, as it is in every freshgate process.${before?.starts ? ' Before → after, as above.' : ''}`,
    '',
    `| request | promises | other async resources${before?.starts ? ' (after)' : ''} | bytes allocated |`,
    '| --- | ---: | --- | ---: |',
    ...starts.map(
      (s) =>
        `| ${START_LABELS[s.mode]} | ${arrow(promises(was(s)), promises(s))} | ${others(s)} | ${arrow(was(s)?.bytes, s.bytes)} |`,
    ),
  ];
}

const START_LABELS: Record<StartCost['mode'], string> = {
  none: 'no token, no session',
  token: 'valid token (cache warm)',
  session: 'session pin read from Redis',
};

const OWNERS: FrameOwner[] = ['freshgate', 'framework', 'pg', 'node', 'v8', 'other package'];
const us = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(1));

function render(results: ProfileResults, before: ProfileResults | undefined, note: string) {
  const m = machineInfo();
  const find = (r: ProfileResults | undefined, run: ProfiledRun) =>
    r?.runs.find((b) => b.framework === run.framework && b.variant === run.variant);
  const label = (key: string) => VARIANTS.find((v) => v.key === key)?.label ?? key;
  const out = [
    PROFILE_START,
    '## 7. Where a request’s CPU goes',
    '',
    `Section 1's freshgate server (build output, ${SECONDS} s of load per variant after a ${WARMUP_SECONDS} s warm-up, the same load generator and connections) with the V8 sampling profiler on while one variant's load runs, started and stopped through the inspector. Self time of the sampled frames per request, idle left out; sampling adds its own cost, so compare rows with each other rather than with section 1. ${note}Taken with \`pnpm --filter bench bench:profile\` on ${m.cpuModel}, ${m.cores} cores, Node.js ${results.node}, ${results.taken}${results.loadAverage === undefined ? '' : `, load average ${results.loadAverage} at the end`}.`,
    '',
    `| framework | variant | req/s (profiled) | CPU µs/request | ${OWNERS.map((o) => `${o} µs`).join(' | ')} |${before ? ' before: CPU µs/request | freshgate µs | pg µs |' : ''}`,
    `| --- | --- | ---: | ---: | ${OWNERS.map(() => '---:').join(' | ')} |${before ? ' ---: | ---: | ---: |' : ''}`,
    ...results.runs.map((run) => {
      const b = find(before, run);
      return `| ${run.framework} | ${label(run.variant)} | ${Math.round(run.requestsPerSecond)} | ${us(run.cpuMicros)} | ${OWNERS.map((o) => us(run.byOwner[o])).join(' | ')} |${before ? ` ${us(b?.cpuMicros)} | ${us(b?.byOwner.freshgate)} | ${us(b?.byOwner.pg)} |` : ''}`;
    }),
    '',
    `The costliest freshgate frames, µs of self time per request${before ? ' (before → after)' : ''}:`,
    '',
  ];
  // Frames match across runs by function and file (line numbers move with the code).
  const name = (frame: string) => frame.replace(/:\d+$/, '');
  const own = (run: ProfiledRun | undefined) =>
    run?.top.filter((f) => f.owner === 'freshgate').slice(0, TOP_FRAMES) ?? [];
  for (const run of results.runs) {
    const b = find(before, run);
    const now = own(run);
    // The costliest frames now, then those that were among the costliest before and are not now.
    const gone = own(b).filter((f) => !now.some((g) => name(g.frame) === name(f.frame)));
    if (now.length + gone.length === 0) continue;
    // A frame no longer among the costliest kept (40) costs less than the last of them.
    const floor = Math.min(...run.top.map((g) => g.micros));
    const after = (frame: string) => {
      const found = run.top.find((g) => name(g.frame) === name(frame));
      // Below 0.05 the bound would print as "< 0.0".
      return found ? us(found.micros) : `< ${us(Math.max(floor, 0.05))}`;
    };
    out.push(
      `- ${run.framework}, ${label(run.variant)}: ${[
        ...now.map((f) => {
          const was = b?.top.find((g) => name(g.frame) === name(f.frame));
          return `\`${f.frame}\` ${was ? `${us(was.micros)} → ` : b ? '– → ' : ''}${us(f.micros)}`;
        }),
        ...gone.map((f) => `\`${f.frame}\` ${us(f.micros)} → ${after(f.frame)}`),
      ].join('; ')}`,
    );
  }
  out.push(...renderStarts(results, before));
  if (before) out.push('', `What was cut between the two runs: ${CUTS.join('; ')}.`);
  out.push('', PROFILE_END);
  return out.join('\n');
}

function readResults(file: string | undefined): ProfileResults | undefined {
  return file && existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as ProfileResults)
    : undefined;
}

function writeReport(results: ProfileResults, before: ProfileResults | undefined): void {
  const note = before
    ? `The "before" figures are an earlier run's (\`PROFILE_BEFORE\`, taken ${before.taken} on the same machine) of the code before the cuts listed under the table. `
    : '';
  writeFileSync(
    REPORT,
    withSection(
      readFileSync(REPORT, 'utf8'),
      render(results, before, note),
      PROFILE_START,
      PROFILE_END,
    ),
  );
  // The numbers the section was rendered from, beside it: the next comparison's `PROFILE_BEFORE`.
  writeFileSync(PUBLISHED, `${JSON.stringify(results, null, 2)}\n`);
  execFileSync(
    join(REPO_DIR, 'node_modules', '.bin', 'biome'),
    ['format', '--write', REPORT, PUBLISHED],
    {
      stdio: 'ignore',
    },
  );
  console.log(`[profile] wrote ${REPORT}`);
}

async function main(): Promise<void> {
  const before = readResults(process.env.PROFILE_BEFORE);
  // PROFILE_FROM=<a profile.json>: render that run again, measure nothing.
  const from = readResults(process.env.PROFILE_FROM);
  if (from) {
    writeReport(from, before);
    return;
  }
  const pinning = cpuPinning();
  const dir = mkdtempSync(join(tmpdir(), 'freshgate-profile-'));
  const cluster = await startBenchCluster(ITEMS);
  const results: ProfileResults = { taken: new Date().toISOString(), node: '', runs: [] };
  try {
    const { sessions, token } = await benchClients(cluster, 1);
    for (const framework of FRAMEWORKS) {
      const config: ServerConfig = {
        framework,
        app: 'fresh',
        primaryUrl: cluster.primary.url,
        replicaUrl: cluster.replica('r1').url,
        redisUrl: cluster.redisUrl,
      };
      const server = await startServer(config, pinning.server);
      results.node = server.ports.node;
      const send = commander(server);
      try {
        for (const key of PROFILED) {
          const variant = VARIANTS.find((v) => v.key === key);
          if (!variant) throw new Error(`no variant ${key}`);
          const file = join(dir, `${framework}-${key}.cpuprofile`);
          const run = {
            url: `http://127.0.0.1:${server.ports.http}`,
            route: variant.route,
            mode: variant.mode,
            connections: 100,
            pipelining: 10,
          };
          const plan: Omit<LoadPlan, 'runs'> & { runs: LoadRun[] } = {
            runs: [
              { ...run, key: `warmup-${key}`, durationSeconds: WARMUP_SECONDS },
              { ...run, key, durationSeconds: SECONDS },
            ],
            items: ITEMS,
            token,
            secret: BENCH_SECRET,
            sessions,
            markDelayMs: 300,
          };
          const measured = (
            await loadOnce(plan, pinning.load, {
              start: () => send('profile-start'),
              end: () => send(`profile-stop ${file}`),
            })
          ).at(-1) as LoadResult;
          if (measured.errors > 0 || measured.non2xx > 0)
            throw new Error(
              `${framework} ${key}: ${measured.errors} errors, ${measured.non2xx} non-2xx`,
            );
          const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
          const summary = summarizeProfile(profile, measured.totalRequests, 40);
          results.runs.push({
            framework,
            variant: key,
            requestsPerSecond: measured.requestsPerSecond,
            ...summary,
          });
          console.log(
            `[profile] ${framework} ${key}: ${Math.round(measured.requestsPerSecond)} req/s, CPU ${us(summary.cpuMicros)} µs/request, freshgate ${us(summary.byOwner.freshgate)} µs`,
          );
        }
      } finally {
        await server.stop();
      }
    }
    results.starts = await startCost({
      primaryUrl: cluster.primary.url,
      replicaUrl: cluster.replica('r1').url,
      redisUrl: cluster.redisUrl,
      token,
      session: sessions[0] as string,
    });
    console.log(`[profile] request starts: ${JSON.stringify(results.starts)}`);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  results.loadAverage = loadAverage();
  mkdirSync(join(APP_DIR, 'results'), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`[profile] wrote ${RESULTS}`);
  writeReport(results, before);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
