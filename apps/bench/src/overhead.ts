import type { ChildProcess } from 'node:child_process';
import type { Cluster } from '@freshgate/harness';
import { createFreshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { cpuSeconds, lines, spawnTs } from './child.js';
import { CounterSpans } from './counter-spans.js';
import type { LoadPlan, LoadResult, LoadRun } from './load-worker.js';
import { cpuPinning, loadAverage } from './machine.js';
import type { ServerConfig } from './overhead-server.js';
import { BENCH_SECRET, measurementRedis, pinStoreRedis } from './redis-client.js';
import { median, medianStandardError, summarize } from './stats.js';

/** Settings of section 1. */
export interface OverheadSettings {
  frameworks: ('express' | 'fastify')[];
  connections: number;
  pipelining: number;
  /** Length of one slice of a variant's load. */
  durationSeconds: number;
  /** Slices per variant in each round (the load moves from variant to variant). */
  cycles: number;
  /**
   * Slices per variant in each round loaded at once with its baseline's server (both on the
   * server core): what the variant adds is measured from these, the two servers' CPU per
   * request over the same seconds (0, or absent in older reports: from the slices in turn).
   */
  pairs?: number;
  /**
   * The warm-up of a paired variant, loaded at once with its baseline server (0: each alone,
   * for `warmupSeconds`). Each server gets about half the core.
   */
  pairWarmupSeconds?: number;
  /** Load before each slice's measured part (a slice's server has been idle in between). */
  rampSeconds: number;
  rounds: number;
  warmupSeconds: number;
  /**
   * Each server's young generation, fixed at this many MiB per semi-space (0: V8's default,
   * which grows under load to a size that differs from one start of the process to the next).
   */
  semiSpaceMiB: number;
  /** Duration of each single-connection latency probe (0: none). */
  probeSeconds: number;
  /** Pause between runs while counters are sampled, ms. */
  markDelayMs: number;
  /** Requests per run instead of a duration (smoke runs only; 0: use the duration). */
  amount: number;
  /** Keys of the variants to run (with their baselines); empty: all. */
  variants: string[];
  /** Rows in `bench_items` (the SELECT route reads a random one). */
  items: number;
  /** Sessions with a live pin, rotated by the session variant. */
  sessions: number;
}

/** One variant of section 1: a route, bare or freshgate, and how the client identifies itself. */
export interface Variant {
  key: string;
  label: string;
  route: 'nodb' | 'item' | 'redis';
  app: ServerConfig['app'];
  mode: LoadRun['mode'];
  /** The variant this one is compared to. */
  baseline: string;
  /** freshgate's `asyncContext` option: `false` runs requests outside AsyncLocalStorage. */
  asyncContext?: false;
}

export const VARIANTS: readonly Variant[] = [
  {
    key: 'nodb-bare',
    label: 'bare framework',
    route: 'nodb',
    app: 'bare',
    mode: 'none',
    baseline: 'nodb-bare',
  },
  {
    // A/A: a second bare server, started, warmed up and loaded like every other variant. What
    // it "adds" over the first is the run's own noise: the resolution its targets are read at.
    key: 'nodb-twin',
    label: 'bare framework again (A/A)',
    route: 'nodb',
    app: 'bare',
    mode: 'none',
    baseline: 'nodb-bare',
  },
  {
    key: 'nodb-floor',
    label: 'floor: one header read, one set, AsyncLocalStorage',
    route: 'nodb',
    app: 'floor',
    mode: 'token',
    baseline: 'nodb-bare',
  },
  {
    // What a started gate costs a process by being there (its monitor's polls, the pin store's
    // heartbeats, the pools' and Redis' sockets), apart from what it does per request.
    key: 'nodb-floor-gate',
    label: 'floor + a started gate, not mounted',
    route: 'nodb',
    app: 'floor-gate',
    mode: 'token',
    baseline: 'nodb-bare',
  },
  {
    key: 'nodb-none',
    label: 'freshgate, no token, no session',
    route: 'nodb',
    app: 'fresh',
    mode: 'none',
    baseline: 'nodb-bare',
  },
  {
    key: 'nodb-token',
    label: 'freshgate, valid token (cache warm)',
    route: 'nodb',
    app: 'fresh',
    mode: 'token',
    baseline: 'nodb-bare',
  },
  {
    key: 'nodb-req-db',
    label: 'freshgate, no token, req.db only (asyncContext: false)',
    route: 'nodb',
    app: 'fresh',
    mode: 'none',
    baseline: 'nodb-bare',
    asyncContext: false,
  },
  {
    key: 'nodb-session',
    label: 'freshgate, session pin read from Redis',
    route: 'nodb',
    app: 'fresh',
    mode: 'session',
    baseline: 'nodb-bare',
  },
  {
    // The pin path's floor: the least a server-side session lookup costs a route.
    key: 'redis-get',
    label: 'bare framework + one Redis GET',
    route: 'redis',
    app: 'bare',
    mode: 'none',
    baseline: 'nodb-bare',
  },
  {
    key: 'nodb-cold',
    label: 'freshgate, first-seen token (cold verify)',
    route: 'nodb',
    app: 'fresh',
    mode: 'cold-token',
    baseline: 'nodb-bare',
  },
  {
    key: 'item-bare',
    label: 'bare framework + pg.Pool on the replica',
    route: 'item',
    app: 'bare',
    mode: 'none',
    baseline: 'item-bare',
  },
  {
    key: 'item-floor',
    label: 'floor + pg.Pool on the replica',
    route: 'item',
    app: 'floor',
    mode: 'token',
    baseline: 'item-bare',
  },
  {
    key: 'item-none',
    label: 'freshgate routing, no token',
    route: 'item',
    app: 'fresh',
    mode: 'none',
    baseline: 'item-bare',
  },
  {
    key: 'item-req-db',
    label: 'freshgate routing, no token, req.db only (asyncContext: false)',
    route: 'item',
    app: 'fresh',
    mode: 'none',
    baseline: 'item-bare',
    asyncContext: false,
  },
  {
    key: 'item-token',
    label: 'freshgate routing, valid token',
    route: 'item',
    app: 'fresh',
    mode: 'token',
    baseline: 'item-bare',
  },
];

/** One measured variant (best of the rounds) and its comparison to its baseline. */
export interface VariantResult {
  framework: string;
  key: string;
  label: string;
  route: 'nodb' | 'item' | 'redis';
  requestsPerSecond: number;
  /** Every round's req/s (its slices together), in run order. */
  rounds: number[];
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** Server process CPU use during the median round, in % of one core. */
  serverCpuPercent: number | undefined;
  /**
   * Server process CPU time per answered request (µs), the median of the rounds: what a
   * request costs the server whether or not the load generator saturated it.
   */
  cpuMicrosPerRequest: number | undefined;
  /** Every round's CPU µs per request, in run order. */
  roundsCpuMicros: (number | undefined)[];
  /** Garbage-collection pause time per request (µs), the median of the rounds. */
  gcMicrosPerRequest: number | undefined;
  /** Redis GET commands per request during the median round. */
  redisGetsPerRequest: number;
  /** Share of pin reads that failed (timeout or open circuit) during the median round. */
  pinReadFailureShare: number;
  /** Mean latency with one connection and no pipelining (µs), the median of the rounds. */
  probeLatencyMicros: number | undefined;
  /** Every round's mean latency with one connection (µs), in run order. */
  roundsProbeMicros: number[];
  /**
   * What the variant adds to that latency over its baseline (µs): the median of the rounds'
   * differences (each round's probes run within seconds of each other).
   */
  probeAddedMicros: number | undefined;
  /** Redis GETs per request with one connection. */
  probeRedisGetsPerRequest: number | undefined;
  /**
   * req/s over the baseline's at the same moment, the median of the slices (of the pairs,
   * where the variant was loaded at once with its baseline).
   */
  ratio: number;
  /**
   * What the variant adds to a request's server time over its baseline (µs), the median of the
   * slices: a slice's CPU µs per request minus the baseline's over the same seconds, both
   * loaded at once (`pairs`); without pairs, minus the baseline's slices in turn around it,
   * interpolated (or `1/R − 1/R₀` where the CPU time was not read).
   */
  addedMicros: number;
  /** Every slice's added µs (see `addedMicros`), in run order, round after round. */
  slicesAddedMicros: number[];
  /** `addedMicros` as a multiple of the floor's on the same route (freshgate variants). */
  floorMultiple: number | undefined;
  deltaP99Ms: number;
}

/** Everything section 1 produced. */
export interface OverheadResult {
  settings: OverheadSettings;
  pinning: string;
  redisRoundTrip: { p50Micros: number; p99Micros: number };
  variants: VariantResult[];
  /** The Node.js version the servers ran on. */
  serverNode: string;
  loadBefore: number;
  loadAfter: number;
  seconds: number;
}

/** Redis GETs, and the counters of the server under load. */
type Counters = ServerStats & { redisGets: number };

/** What a section-1 server's stats port answers. */
export interface ServerStats {
  pinReads: number;
  pinReadFailures: number;
  /**
   * Pin writes, refreshes and write-backs of failed ones (one Lua script each, whose own GET
   * Redis counts with the clients' GETs).
   */
  pinExtends: number;
  /** Garbage-collection pauses since the start, ms. */
  gcMs: number;
}

interface Sample {
  result: LoadResult;
  /** Where the run stood in its load plan (slices of one round are interpolated by it). */
  position: number;
  cpuPercent: number | undefined;
  /** Server CPU time during the run (s). */
  cpuSeconds: number | undefined;
  counters: Counters;
}

async function counters(redis: Redis, statsUrl: string): Promise<Counters> {
  const [info, stats] = await Promise.all([
    redis.info('commandstats'),
    fetch(statsUrl).then((res) => res.json() as Promise<ServerStats>),
  ]);
  const match = /cmdstat_get:calls=(\d+)/.exec(info);
  return { redisGets: match ? Number(match[1]) : 0, ...stats };
}

type Server = Awaited<ReturnType<typeof startServer>>;

/**
 * The Node.js flags that fix a server's young generation at `mib` MiB per semi-space (none for
 * 0: V8's default, which starts at 1 MiB and grows under load as V8 sees fit).
 */
export function youngGeneration(mib: number): string[] {
  return mib > 0 ? [`--min-semi-space-size=${mib}`, `--max-semi-space-size=${mib}`] : [];
}

/** Starts a section-1 server process and waits for its ports. */
export async function startServer(config: ServerConfig, pin: string[], semiSpaceMiB = 0) {
  const child = spawnTs('./overhead-server.ts', { BENCH_SERVER: JSON.stringify(config) }, pin, {
    profile: config.app === 'fresh',
    built: true,
    // Put to sleep (SIGSTOP) while another server takes the load.
    detached: true,
    nodeFlags: youngGeneration(semiSpaceMiB),
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // How the process ended (the signal that ended it, or its exit code), once it has.
  let how: string | null = null;
  const ended = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      how = signal ?? `code ${code}`;
      resolve(how);
    }),
  );
  const ports = await Promise.race([
    new Promise<{ http: number; stats: number; node: string }>((resolve) =>
      lines(child.stdout, (line) => resolve(JSON.parse(line))),
    ),
    ended.then((ending) => {
      throw new Error(`overhead server exited (${ending}): ${stderr}`);
    }),
  ]);
  return {
    child,
    ports,
    /** How the server ended and what it printed, or null while it runs. */
    died: () => (how === null ? null : `${how}: ${stderr.slice(-2_000)}`),
    stop: () =>
      new Promise<void>((resolve) => {
        // Not `exitCode`: it stays null for a process ended by a signal.
        if (how !== null) return resolve();
        void ended.then(() => resolve());
        // A server put to sleep between slices must be awake to read its stdin.
        child.kill('SIGCONT');
        child.stdin?.end();
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

async function runLoad(
  plan: LoadPlan,
  pin: string[],
  serverOf: (key: string) => ChildProcess,
  sample: (key: string) => Promise<Counters>,
  /**
   * Servers that sleep (SIGSTOP) while the load runs on another one, so that their timers do
   * not take a share of the core the measured server is pinned to.
   */
  sleepers: readonly ChildProcess[] = [],
): Promise<Map<string, Sample>> {
  const child = spawnTs('./load-worker.ts', { BENCH_LOAD: JSON.stringify(plan) }, pin);
  // A server sleeps only once the counter samples asked of it are answered.
  const answered = new Map<ChildProcess, Promise<unknown>>();
  const counters = new CounterSpans((key) => {
    const server = serverOf(key);
    const sampled = sample(key);
    answered.set(server, Promise.allSettled([answered.get(server), sampled]));
    return sampled;
  });
  const asleep = new Set<ChildProcess>();
  const wake = (server: ChildProcess) => {
    if (asleep.delete(server) && server.exitCode === null) server.kill('SIGCONT');
  };
  const lull = (running: readonly ChildProcess[]) => {
    for (const server of running) wake(server);
    for (const server of sleepers) {
      if (running.includes(server) || asleep.has(server)) continue;
      asleep.add(server);
      const sleep = () => {
        if (asleep.has(server) && server.exitCode === null) server.kill('SIGSTOP');
      };
      const pending = answered.get(server);
      if (pending) void pending.then(sleep);
      else sleep();
    }
  };
  const cpuMarks = new Map<string, number | undefined>();
  const cpuUse = new Map<string, number | undefined>();
  let stderr = '';
  lines(child.stderr, (line) => {
    const [event, key, ...others] = line.split(' ');
    if (event === 'begin' && key) lull([key, ...others].map(serverOf));
    else if ((event === 'start' || event === 'end') && key) {
      const cpu = cpuSeconds(serverOf(key).pid);
      if (event === 'start') {
        cpuMarks.set(key, cpu);
        counters.start(key);
      } else {
        const start = cpuMarks.get(key);
        if (!cpuMarks.has(key) || !counters.end(key)) return;
        cpuUse.set(key, start === undefined || cpu === undefined ? undefined : cpu - start);
      }
    } else stderr += `${line}\n`;
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (const server of [...asleep]) wake(server);
  if (code !== 0) throw new Error(`load generator exited (${code}): ${stderr}`);
  const results = JSON.parse(stdout) as LoadResult[];
  const samples = new Map<string, Sample>();
  for (const [position, result] of results.entries()) {
    const cpu = cpuUse.get(result.key);
    samples.set(result.key, {
      result,
      position,
      // Over the run itself: the pause after its start mark leaves the server idle.
      cpuPercent: cpu === undefined ? undefined : (100 * cpu) / result.durationSeconds,
      cpuSeconds: cpu,
      counters: (await counters.delta(result.key)) ?? {
        redisGets: Number.NaN,
        pinReads: Number.NaN,
        pinReadFailures: Number.NaN,
        pinExtends: Number.NaN,
        gcMs: Number.NaN,
      },
    });
  }
  return samples;
}

/**
 * The GETs the server sent: Redis counts the GET inside each pin write's script with them, and
 * how many pin writes (read-TTL refreshes) fall into one run depends on when it started.
 */
function readGets(c: Counters): number {
  return c.redisGets - c.pinExtends;
}

/** The key of one slice of a variant's load. */
function sliceKey(variant: string, cycle: number): string {
  return `${variant}@${cycle}`;
}

/** The keys of one slice of a variant loaded at once with its baseline: its own, its baseline's. */
function pairKeys(variant: string, cycle: number): [string, string] {
  return [`pair-${variant}@${cycle}`, `pair-${variant}@${cycle}-baseline`];
}

/** The key of the baseline server a variant is paired with (one per variant, see `pairs`). */
function pairedBaseline(variant: string): string {
  return `${variant}/baseline`;
}

/** The variants loaded at once with a baseline server of their own (not the baselines). */
function pairedVariants(chosen: readonly Variant[], pairs: number): Variant[] {
  return pairs > 0
    ? chosen.filter((v) => v.baseline !== v.key && chosen.some((b) => b.key === v.baseline))
    : [];
}

function rps(sample: Sample): number {
  return sample.result.requestsPerSecond;
}

/**
 * `f` of the baseline at `position` in its round's load plan: interpolated between its slices
 * right before and right after, or the nearest one at either end.
 */
function at(base: readonly Sample[], position: number, f: (sample: Sample) => number): number {
  let before: Sample | undefined;
  let after: Sample | undefined;
  for (const slice of base) {
    if (slice.position <= position && (!before || slice.position > before.position)) before = slice;
    if (slice.position >= position && (!after || slice.position < after.position)) after = slice;
  }
  if (!before || !after) return f((before ?? after) as Sample);
  if (before === after) return f(before);
  const w = (position - before.position) / (after.position - before.position);
  return f(before) * (1 - w) + f(after) * w;
}

/** A variant's slices of one round as one run: totals, and the median slice's latencies. */
function combine(slices: readonly Sample[]): Sample {
  const sum = (f: (s: Sample) => number) => slices.reduce((n, s) => n + f(s), 0);
  const totalRequests = sum((s) => s.result.totalRequests);
  const durationSeconds = sum((s) => s.result.durationSeconds);
  const known = slices.every((s) => s.cpuSeconds !== undefined);
  const counters = {} as Counters;
  for (const name of Object.keys(slices[0]?.counters ?? {}) as (keyof Counters)[])
    counters[name] = sum((s) => s.counters[name]);
  return {
    result: {
      key: slices[0]?.result.key ?? '',
      requestsPerSecond: totalRequests / durationSeconds,
      totalRequests,
      p50Ms: median(slices.map((s) => s.result.p50Ms)),
      p99Ms: median(slices.map((s) => s.result.p99Ms)),
      errors: sum((s) => s.result.errors),
      non2xx: sum((s) => s.result.non2xx),
      durationSeconds,
    },
    position: slices[0]?.position ?? 0,
    cpuPercent: known ? median(slices.map((s) => s.cpuPercent as number)) : undefined,
    cpuSeconds: known ? sum((s) => s.cpuSeconds as number) : undefined,
    counters,
  };
}

/** Server CPU µs per answered request in one run. */
function cpuMicrosOf(sample: Sample): number | undefined {
  const n = sample.result.totalRequests;
  return sample.cpuSeconds === undefined || n === 0 ? undefined : (sample.cpuSeconds * 1e6) / n;
}

/** A measured slice and its baseline at the same moment: req/s and CPU µs per request. */
interface Compared {
  rps: number;
  rps0: number;
  cpu: number | undefined;
  cpu0: number | undefined;
}

/**
 * What a variant adds in each compared slice: CPU µs per request over its baseline's, or
 * `1/R − 1/R₀` where a CPU time was not read.
 */
function addedMicrosOf(compared: readonly Compared[]): number[] {
  const cpuKnown = compared.every((x) => x.cpu !== undefined && x.cpu0 !== undefined);
  return compared.map((x) =>
    cpuKnown ? (x.cpu as number) - (x.cpu0 as number) : (1 / x.rps - 1 / x.rps0) * 1e6,
  );
}

/** The round of the median req/s (the lower one for an even count). */
function medianRound(rounds: readonly Sample[]): Sample | undefined {
  const sorted = [...rounds].sort(
    (a, b) => a.result.requestsPerSecond - b.result.requestsPerSecond,
  );
  return sorted[(sorted.length - 1) >> 1];
}

/**
 * The median of `a[i] − b[i]` over the rounds both have (measurements of one round pair up),
 * or `undefined` when there is none.
 */
export function pairedMedian(a: readonly number[], b: readonly number[]): number | undefined {
  const n = Math.min(a.length, b.length);
  if (n === 0) return undefined;
  return median(Array.from({ length: n }, (_, i) => (a[i] as number) - (b[i] as number)));
}

/**
 * How far apart section 1 can tell two variants, from its A/A variant (a second bare server):
 * the larger of what the twin "adds" over bare (the median of its slices: a bias between two
 * servers that should cost the same) and twice the standard error of that median. The error
 * comes from the spread of the rounds (each round's slices, `slicesPerRound` of them, taken
 * together: a round's servers are started for it, and how a process settles after its start
 * moves all its slices alike), or from the slices' spread in a run of fewer than 3 rounds.
 * Undefined without a twin, or with fewer than two of its slices.
 */
export function resolutionMicros(
  twin: VariantResult | undefined,
  slicesPerRound = 1,
): number | undefined {
  const slices = twin?.slicesAddedMicros ?? [];
  const per = Math.max(1, Math.floor(slicesPerRound));
  const rounds: number[] = [];
  for (let i = 0; i + per <= slices.length; i += per) rounds.push(median(slices.slice(i, i + per)));
  const error = medianStandardError(rounds.length >= 3 ? rounds : slices);
  if (!twin || Number.isNaN(error)) return undefined;
  return Math.max(Math.abs(twin.addedMicros), 2 * error);
}

/** The median of `f` over the rounds, undefined when one round has no value. */
function medianOf<T>(
  rounds: readonly T[],
  f: (round: T) => number | undefined,
): number | undefined {
  const values: number[] = [];
  for (const round of rounds) {
    const value = f(round);
    if (value === undefined) return undefined;
    values.push(value);
  }
  return values.length === 0 ? undefined : median(values);
}

async function redisRoundTrip(redis: Redis): Promise<{ p50Micros: number; p99Micros: number }> {
  const times: number[] = [];
  for (let i = 0; i < 2_000; i++) {
    const start = performance.now();
    await redis.get('freshgate:bench:rtt');
    times.push((performance.now() - start) * 1000);
  }
  const s = summarize(times.slice(200));
  return { p50Micros: s.p50, p99Micros: s.p99 };
}

/**
 * Pins (one per session, `count` sessions) and a token made by another process, as in
 * production: the server under test learns them from Redis and the request, never from its
 * own memory.
 */
export async function benchClients(
  cluster: Cluster,
  count: number,
): Promise<{ sessions: string[]; token: string }> {
  const redis = pinStoreRedis(cluster.redisUrl);
  await redis.connect();
  const driver = await createFreshgate({
    primary: cluster.primary.url,
    replicas: {},
    secret: BENCH_SECRET,
    pinStore: redisPinStore(redis),
    pinTtl: '1h',
    // Longer than section 1 runs: an expired token would turn the cached-token variant into
    // one that is refused on every request.
    token: { ttl: '2h' },
  });
  try {
    await driver.start();
    const sessions = Array.from({ length: count }, (_, i) => `bench-session-${i}`);
    for (const sessionKey of sessions) {
      const { db } = await driver.begin({ sessionKey });
      await db.query('UPDATE bench_items SET version = version + 1 WHERE id = $1', [1]);
    }
    const { db, freshness } = await driver.begin({});
    await db.query('UPDATE bench_items SET version = version + 1 WHERE id = $1', [2]);
    const token = freshness.token;
    if (!token) throw new Error('the driver write returned no freshness token');
    await cluster.waitForReplicas();
    return { sessions, token };
  } finally {
    await driver.close();
    redis.disconnect();
  }
}

/**
 * Section 1: HTTP throughput and latency of each framework bare and with freshgate, per
 * variant, from a load generator in another process. Each variant runs on a server process
 * started for it in each round; the servers of a round run side by side while the load moves
 * among them in slices, each slice is compared with its baseline's slices around it, and the
 * median of those comparisons is reported.
 */
export async function runOverhead(
  cluster: Cluster,
  settings: OverheadSettings,
  log: (message: string) => void = () => {},
): Promise<OverheadResult> {
  const started = performance.now();
  const loadBefore = loadAverage();
  const pinning = cpuPinning();
  const { sessions, token } = await benchClients(cluster, settings.sessions);
  const counterRedis = measurementRedis(cluster.redisUrl);
  await counterRedis.connect();
  const rtt = await redisRoundTrip(counterRedis);

  const config = (framework: ServerConfig['framework']) => ({
    framework,
    primaryUrl: cluster.primary.url,
    replicaUrl: cluster.replica('r1').url,
    redisUrl: cluster.redisUrl,
  });
  const chosen = VARIANTS.filter(
    (v) =>
      settings.variants.length === 0 ||
      settings.variants.includes(v.key) ||
      VARIANTS.some((w) => w.baseline === v.key && settings.variants.includes(w.key)),
  );
  // Per variant (`framework:key`), per round: its slices in run order.
  const slices = new Map<string, Sample[][]>();
  // Per variant, per round: its single-connection probe.
  const probes = new Map<string, Sample[]>();
  // Per variant, per round: its slices loaded at once with its baseline, and the baseline's.
  const pairs = new Map<string, [Sample, Sample][][]>();
  const withPairs = pairedVariants(chosen, settings.pairs ?? 0);
  const baselineOf = (v: Variant) => chosen.find((b) => b.key === v.baseline) as Variant;
  let serverNode = process.versions.node;
  for (const framework of settings.frameworks) {
    log(`overhead: ${framework}`);
    for (let round = 0; round < settings.rounds; round++) {
      // Every variant runs on a server process of its own, started for it in each round and
      // warmed up on its own load: how much garbage-collection work a process settles on per
      // request depends on what it ran before and differs from one start to the next
      // (docs/operations.md), so a process shared with other variants, or kept from one round
      // to the next, would carry one variant's or one start's luck into the others. The
      // servers of a round all run at once, and the load moves from one to the next in short
      // slices: the machine's slow spells last tens of seconds, so each slice is compared with
      // its baseline's slices right before and after it, not with a run made a minute apart.
      const servers = new Map<string, Server>();
      const deadServer = (): Error | null => {
        for (const [key, server] of servers) {
          const died = server.died();
          if (died !== null)
            return new Error(
              `${framework} ${key}: its server died in round ${round + 1} (${died})`,
            );
        }
        return null;
      };
      try {
        for (const v of chosen) {
          const server = await startServer(
            { ...config(framework), app: v.app, asyncContext: v.asyncContext },
            pinning.server,
            settings.semiSpaceMiB,
          );
          servers.set(v.key, server);
          serverNode = server.ports.node;
        }
        // A variant is paired with a baseline server of its own, which serves the same load
        // history (its warm-up, then the same pairs): a process that has served more costs
        // more per request (a bare server paired with every variant in turn cost 3 to 10 µs
        // more per request than its A/A twin).
        for (const v of withPairs) {
          const base = baselineOf(v);
          servers.set(
            pairedBaseline(v.key),
            await startServer(
              { ...config(framework), app: base.app, asyncContext: base.asyncContext },
              pinning.server,
              settings.semiSpaceMiB,
            ),
          );
        }
        // The server each run of the plan loads, recorded as the plan is built.
        const target = new Map<string, Server>();
        const serverOf = (key: string) => target.get(key) as Server;
        const run = (
          v: Variant,
          key: string,
          durationSeconds: number,
          { single = false, rampSeconds = 0, on = v.key } = {},
        ): LoadRun => {
          const server = servers.get(on) as Server;
          target.set(key, server);
          return {
            key,
            url: `http://127.0.0.1:${server.ports.http}`,
            route: v.route,
            mode: v.mode,
            // One connection without pipelining: a closed loop whose mean latency is
            // 1/throughput, which measures what the variant adds to a single request's latency.
            connections: single ? 1 : settings.connections,
            pipelining: single ? 1 : settings.pipelining,
            durationSeconds,
            rampSeconds,
            amount: single ? undefined : settings.amount || undefined,
          };
        };
        // Each round and each cycle starts one variant further: none always runs first, or
        // always right after the same neighbour.
        const order = (shift: number) =>
          chosen.map((_, i) => chosen[(i + shift) % chosen.length] as Variant);
        const runs: (LoadRun | LoadRun[])[] = [];
        // A paired variant warms up at once with its baseline server (both then have served the
        // same load, and a pair measured right after a short warm-up alone still cost more);
        // the others alone.
        const pairWarmup = settings.pairWarmupSeconds ?? 0;
        for (const v of order(round)) {
          const paired = withPairs.includes(v);
          const seconds = paired && pairWarmup > 0 ? pairWarmup : settings.warmupSeconds;
          if (seconds === 0) continue;
          const own = run(v, `warmup-${v.key}`, seconds);
          if (!paired) {
            runs.push(own);
            continue;
          }
          const baseline = run(baselineOf(v), `warmup-${pairedBaseline(v.key)}`, seconds, {
            on: pairedBaseline(v.key),
          });
          if (pairWarmup > 0) runs.push(round % 2 === 0 ? [own, baseline] : [baseline, own]);
          else runs.push(own, baseline);
        }
        // First each variant loaded at once with its own baseline server, both on the server
        // core and the others asleep: over the same seconds the machine is as fast for one as
        // for the other, and the difference of their CPU per request is what the variant adds.
        // Before the slices in turn, so that both servers of a pair have served the same load.
        // The load of a pair starts in the order given, which each cycle turns around.
        for (let cycle = 0; cycle < (settings.pairs ?? 0); cycle++)
          for (const v of order(round + cycle)) {
            if (!withPairs.includes(v)) continue;
            const base = baselineOf(v);
            const [own, baseline] = pairKeys(v.key, cycle);
            const rampSeconds = settings.rampSeconds;
            const pair = [
              run(v, own, settings.durationSeconds, { rampSeconds }),
              run(base, baseline, settings.durationSeconds, {
                rampSeconds,
                on: pairedBaseline(v.key),
              }),
            ];
            runs.push((round + cycle) % 2 === 0 ? pair : pair.reverse());
          }
        for (let cycle = 0; cycle < settings.cycles; cycle++)
          for (const v of order(round + cycle))
            runs.push(
              run(v, sliceKey(v.key, cycle), settings.durationSeconds, {
                rampSeconds: settings.rampSeconds,
              }),
            );
        // Every round probes every variant, one after another: the machine's slow spells would
        // make one probe per variant, or probes a minute apart, measure them rather than the
        // variants, so each round's difference counts and the median of the rounds is kept.
        if (settings.probeSeconds > 0)
          for (const v of order(round))
            runs.push(run(v, `probe-${v.key}`, settings.probeSeconds, { single: true }));
        const measured = await runLoad(
          {
            runs,
            items: settings.items,
            token,
            secret: BENCH_SECRET,
            sessions,
            markDelayMs: settings.markDelayMs,
          },
          pinning.load,
          (key) => serverOf(key).child,
          (key) => counters(counterRedis, `http://127.0.0.1:${serverOf(key).ports.stats}/`),
          [...servers.values()].map((server) => server.child),
        ).catch((error: unknown) => {
          // A server that died mid-round fails the counters read of its next slice: say which.
          throw deadServer() ?? error;
        });
        const dead = deadServer();
        if (dead !== null) throw dead;
        for (const v of chosen) {
          const id = `${framework}:${v.key}`;
          const own: Sample[] = [];
          for (let cycle = 0; cycle < settings.cycles; cycle++) {
            const found = measured.get(sliceKey(v.key, cycle));
            if (!found) throw new Error(`no result for ${sliceKey(v.key, cycle)}`);
            own.push(found);
          }
          (slices.get(id) ?? slices.set(id, []).get(id)!).push(own);
          const paired: [Sample, Sample][] = [];
          const pairCount = withPairs.includes(v) ? (settings.pairs ?? 0) : 0;
          for (let cycle = 0; cycle < pairCount; cycle++) {
            const [own, baseline] = pairKeys(v.key, cycle).map((key) => {
              const found = measured.get(key);
              if (!found) throw new Error(`no result for ${key}`);
              return found;
            }) as [Sample, Sample];
            paired.push([own, baseline]);
          }
          (pairs.get(id) ?? pairs.set(id, []).get(id)!).push(paired);
          const probe = measured.get(`probe-${v.key}`);
          if (probe) (probes.get(id) ?? probes.set(id, []).get(id)!).push(probe);
        }
      } finally {
        await Promise.all([...servers.values()].map((server) => server.stop()));
      }
      log(`overhead: ${framework} round ${round + 1}/${settings.rounds} done`);
    }
  }
  counterRedis.disconnect();

  const variants: VariantResult[] = [];
  for (const framework of settings.frameworks) {
    const slicesOf = (key: string) => slices.get(`${framework}:${key}`) ?? [];
    for (const v of chosen) {
      const own = slicesOf(v.key);
      const baseSlices = slicesOf(v.baseline);
      // Each measured slice beside its baseline at the same moment: the pairs (the variant and
      // its own bare server loaded at once, over the same seconds) where the run has them, else
      // the baseline's slices in turn right before and after it in the same round, interpolated.
      const compared: Compared[] = [];
      const paired = (pairs.get(`${framework}:${v.key}`) ?? []).flat();
      if (paired.length > 0)
        for (const [a, b] of paired)
          compared.push({ rps: rps(a), rps0: rps(b), cpu: cpuMicrosOf(a), cpu0: cpuMicrosOf(b) });
      else
        own.forEach((roundSlices, round) => {
          const base = baseSlices[round] ?? [];
          const cpuKnown = base.every((b) => cpuMicrosOf(b) !== undefined);
          for (const slice of roundSlices)
            compared.push({
              rps: rps(slice),
              rps0: at(base, slice.position, rps),
              cpu: cpuMicrosOf(slice),
              cpu0: cpuKnown
                ? at(base, slice.position, (b) => cpuMicrosOf(b) as number)
                : undefined,
            });
        });
      const added = addedMicrosOf(compared);
      const list = own.map(combine);
      const baseList = baseSlices.map(combine);
      // The round of the median req/s gives the figures that have no pairing (latencies).
      const ownRound = medianRound(list) as Sample;
      const probe = probes.get(`${framework}:${v.key}`) ?? [];
      const probeBase = probes.get(`${framework}:${v.baseline}`) ?? [];
      const probeMicros = probe.map((x) => 1e6 / x.result.requestsPerSecond);
      const probeBaseMicros = probeBase.map((x) => 1e6 / x.result.requestsPerSecond);
      const c = ownRound.counters;
      const base = medianRound(baseList);
      variants.push({
        framework,
        key: v.key,
        label: v.label,
        route: v.route,
        requestsPerSecond: median(list.map(rps)),
        rounds: list.map(rps),
        p50Ms: ownRound.result.p50Ms,
        p99Ms: ownRound.result.p99Ms,
        errors: list.reduce((n, x) => n + x.result.errors, 0),
        non2xx: list.reduce((n, x) => n + x.result.non2xx, 0),
        serverCpuPercent: ownRound.cpuPercent,
        cpuMicrosPerRequest: medianOf(list, cpuMicrosOf),
        roundsCpuMicros: list.map(cpuMicrosOf),
        gcMicrosPerRequest: medianOf(
          list,
          (x) => (x.counters.gcMs * 1000) / x.result.totalRequests,
        ),
        redisGetsPerRequest: readGets(c) / ownRound.result.totalRequests,
        pinReadFailureShare: c.pinReads > 0 ? c.pinReadFailures / c.pinReads : 0,
        ratio: median(compared.map((x) => x.rps / x.rps0)),
        addedMicros: median(added),
        slicesAddedMicros: added,
        floorMultiple: undefined,
        deltaP99Ms: ownRound.result.p99Ms - (base?.result.p99Ms ?? Number.NaN),
        probeLatencyMicros: probe.length > 0 ? median(probeMicros) : undefined,
        roundsProbeMicros: probeMicros,
        probeAddedMicros: pairedMedian(probeMicros, probeBaseMicros),
        probeRedisGetsPerRequest:
          probe.length > 0
            ? probe.reduce((n, x) => n + readGets(x.counters), 0) /
              probe.reduce((n, x) => n + x.result.totalRequests, 0)
            : undefined,
      });
    }
  }
  // What freshgate adds, in units of what the floor adds on the same route, in the same run.
  for (const v of variants) {
    const floor = variants.find((w) => w.framework === v.framework && w.key === `${v.route}-floor`);
    const fresh = VARIANTS.find((w) => w.key === v.key)?.app === 'fresh';
    if (floor && floor.addedMicros > 0 && fresh)
      v.floorMultiple = v.addedMicros / floor.addedMicros;
  }
  return {
    settings,
    pinning: pinning.note,
    redisRoundTrip: rtt,
    variants,
    serverNode,
    loadBefore,
    loadAfter: loadAverage(),
    seconds: (performance.now() - started) / 1000,
  };
}
