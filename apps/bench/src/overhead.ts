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
import { median, summarize } from './stats.js';

/** Settings of section 1. */
export interface OverheadSettings {
  frameworks: ('express' | 'fastify')[];
  connections: number;
  pipelining: number;
  durationSeconds: number;
  rounds: number;
  warmupSeconds: number;
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
  route: 'nodb' | 'item';
  app: 'bare' | 'floor' | 'fresh';
  mode: LoadRun['mode'];
  /** The variant this one is compared to. */
  baseline: string;
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
    key: 'nodb-floor',
    label: 'floor: one header read, one set, AsyncLocalStorage',
    route: 'nodb',
    app: 'floor',
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
    key: 'nodb-session',
    label: 'freshgate, session pin read from Redis',
    route: 'nodb',
    app: 'fresh',
    mode: 'session',
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
  route: 'nodb' | 'item';
  requestsPerSecond: number;
  /** Every round's req/s, in run order. */
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
  /** Mean latency with one connection and no pipelining (µs). */
  probeLatencyMicros: number | undefined;
  /** What the variant adds to that latency over its baseline (µs). */
  probeAddedMicros: number | undefined;
  /** Redis GETs per request with one connection. */
  probeRedisGetsPerRequest: number | undefined;
  /** req/s over the baseline's in the same round, the median of the rounds. */
  ratio: number;
  /**
   * What the variant adds to a request's server time over its baseline (µs): CPU µs per request
   * minus the baseline's in the same round (or `1/R − 1/R₀` where the CPU time was not read),
   * the median of the rounds.
   */
  addedMicros: number;
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
  /** Pin writes (one Lua script each, whose own GET Redis counts with the clients' GETs). */
  pinExtends: number;
  /** Garbage-collection pauses since the start, ms. */
  gcMs: number;
}

interface Sample {
  result: LoadResult;
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

/** Starts a section-1 server process and waits for its ports. */
export async function startServer(config: ServerConfig, pin: string[]) {
  const child = spawnTs('./overhead-server.ts', { BENCH_SERVER: JSON.stringify(config) }, pin, {
    profile: config.app === 'fresh',
    built: true,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const ports = await new Promise<{ http: number; stats: number; node: string }>(
    (resolve, reject) => {
      lines(child.stdout, (line) => resolve(JSON.parse(line)));
      child.once('exit', (code) =>
        reject(new Error(`overhead server exited (${code}): ${stderr}`)),
      );
    },
  );
  return {
    child,
    ports,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin?.end();
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

async function runLoad(
  plan: LoadPlan,
  pin: string[],
  serverOf: (key: string) => ChildProcess,
  sample: () => Promise<Counters>,
): Promise<Map<string, Sample>> {
  const child = spawnTs('./load-worker.ts', { BENCH_LOAD: JSON.stringify(plan) }, pin);
  const counters = new CounterSpans(sample);
  const cpuMarks = new Map<string, { cpu: number | undefined; at: number }>();
  const cpuUse = new Map<string, { seconds: number; percent: number } | undefined>();
  let stderr = '';
  lines(child.stderr, (line) => {
    const [event, key] = line.split(' ');
    if ((event === 'start' || event === 'end') && key) {
      const mark = { cpu: cpuSeconds(serverOf(key).pid), at: performance.now() };
      if (event === 'start') {
        cpuMarks.set(key, mark);
        counters.start(key);
      } else {
        const start = cpuMarks.get(key);
        if (!start || !counters.end(key)) return;
        cpuUse.set(
          key,
          start.cpu === undefined || mark.cpu === undefined
            ? undefined
            : {
                seconds: mark.cpu - start.cpu,
                percent: (100 * (mark.cpu - start.cpu)) / ((mark.at - start.at) / 1000),
              },
        );
      }
    } else stderr += `${line}\n`;
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited (${code}): ${stderr}`);
  const results = JSON.parse(stdout) as LoadResult[];
  const samples = new Map<string, Sample>();
  for (const result of results) {
    samples.set(result.key, {
      result,
      cpuPercent: cpuUse.get(result.key)?.percent,
      cpuSeconds: cpuUse.get(result.key)?.seconds,
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

/** Server CPU µs per answered request in one run. */
function cpuMicrosOf(sample: Sample): number | undefined {
  const n = sample.result.totalRequests;
  return sample.cpuSeconds === undefined || n === 0 ? undefined : (sample.cpuSeconds * 1e6) / n;
}

/** The round of the median req/s (the lower one for an even count). */
function medianRound(rounds: readonly Sample[]): Sample | undefined {
  const sorted = [...rounds].sort(
    (a, b) => a.result.requestsPerSecond - b.result.requestsPerSecond,
  );
  return sorted[(sorted.length - 1) >> 1];
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
 * started for it; the variants of a round run one after the other, each variant is compared
 * with its baseline of the same round, and the median of the rounds is reported.
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
  const samples = new Map<string, Sample[]>();
  const probes = new Map<string, Sample>();
  let serverNode = process.versions.node;
  for (const framework of settings.frameworks) {
    log(`overhead: ${framework}`);
    for (let round = 0; round < settings.rounds; round++) {
      const last = round === settings.rounds - 1;
      // Each round starts one variant further: none always runs first, or always right after
      // the same neighbour, while the machine drifts over a round.
      const order = chosen.map((_, i) => chosen[(i + round) % chosen.length] as Variant);
      for (const v of order) {
        // Every variant runs on a server process of its own, started for it and warmed up
        // on its own load: how much garbage-collection work a process settles on per request
        // depends on what it ran before and differs from one start to the next
        // (docs/operations.md), so a process shared with other variants, or kept from one
        // round to the next, would carry one variant's or one start's luck into the others.
        const server = await startServer({ ...config(framework), app: v.app }, pinning.server);
        try {
          serverNode = server.ports.node;
          const url = `http://127.0.0.1:${server.ports.http}`;
          const load = { url, route: v.route, mode: v.mode };
          const base = {
            ...load,
            connections: settings.connections,
            pipelining: settings.pipelining,
            amount: settings.amount || undefined,
          };
          const plan: LoadPlan = {
            runs: [
              ...(settings.warmupSeconds > 0
                ? [{ ...base, key: `warmup-${v.key}`, durationSeconds: settings.warmupSeconds }]
                : []),
              { ...base, key: v.key, durationSeconds: settings.durationSeconds },
              // One connection without pipelining: a closed loop whose mean latency is
              // 1/throughput, which measures what the variant adds to a single request's latency.
              ...(last && settings.probeSeconds > 0
                ? [
                    {
                      ...load,
                      key: `probe-${v.key}`,
                      connections: 1,
                      pipelining: 1,
                      durationSeconds: settings.probeSeconds,
                    },
                  ]
                : []),
            ],
            items: settings.items,
            token,
            secret: BENCH_SECRET,
            sessions,
            markDelayMs: settings.markDelayMs,
          };
          const statsUrl = `http://127.0.0.1:${server.ports.stats}/`;
          const measured = await runLoad(
            plan,
            pinning.load,
            () => server.child,
            () => counters(counterRedis, statsUrl),
          );
          const found = measured.get(v.key);
          if (!found) throw new Error(`no result for ${v.key}`);
          const id = `${framework}:${v.key}`;
          (samples.get(id) ?? samples.set(id, []).get(id)!).push(found);
          const probe = measured.get(`probe-${v.key}`);
          if (probe) probes.set(id, probe);
        } finally {
          await server.stop();
        }
      }
      log(`overhead: ${framework} round ${round + 1}/${settings.rounds} done`);
    }
  }
  counterRedis.disconnect();

  const variants: VariantResult[] = [];
  for (const framework of settings.frameworks) {
    // Each variant is compared with its baseline round by round, and the median of the rounds
    // counts: the machine's speed drifts over minutes (a virtual machine's CPU share, its
    // neighbours), so the least of each variant's rounds, taken on its own, would pair runs
    // made minutes apart.
    const roundsOf = (key: string) => samples.get(`${framework}:${key}`) ?? [];
    for (const v of chosen) {
      const list = roundsOf(v.key);
      const baseList = roundsOf(v.baseline);
      const paired = list.map((sample, i) => ({ sample, base: baseList[i] as Sample }));
      const rps = (x: Sample) => x.result.requestsPerSecond;
      // The round of the median req/s gives the figures that have no pairing (latencies).
      const own = medianRound(list) as Sample;
      const probe = probes.get(`${framework}:${v.key}`);
      const probeBase = probes.get(`${framework}:${v.baseline}`);
      const c = own.counters;
      const base = medianRound(baseList);
      const added =
        medianOf(paired, ({ sample, base: b }) => {
          const cpu = cpuMicrosOf(sample);
          const cpu0 = cpuMicrosOf(b);
          return cpu === undefined || cpu0 === undefined ? undefined : cpu - cpu0;
        }) ?? median(paired.map(({ sample, base: b }) => (1 / rps(sample) - 1 / rps(b)) * 1e6));
      variants.push({
        framework,
        key: v.key,
        label: v.label,
        route: v.route,
        requestsPerSecond: median(list.map(rps)),
        rounds: list.map(rps),
        p50Ms: own.result.p50Ms,
        p99Ms: own.result.p99Ms,
        errors: list.reduce((n, x) => n + x.result.errors, 0),
        non2xx: list.reduce((n, x) => n + x.result.non2xx, 0),
        serverCpuPercent: own.cpuPercent,
        cpuMicrosPerRequest: medianOf(list, cpuMicrosOf),
        roundsCpuMicros: list.map(cpuMicrosOf),
        gcMicrosPerRequest: medianOf(
          list,
          (x) => (x.counters.gcMs * 1000) / x.result.totalRequests,
        ),
        redisGetsPerRequest: readGets(c) / own.result.totalRequests,
        pinReadFailureShare: c.pinReads > 0 ? c.pinReadFailures / c.pinReads : 0,
        ratio: median(paired.map(({ sample, base: b }) => rps(sample) / rps(b))),
        addedMicros: added,
        floorMultiple: undefined,
        deltaP99Ms: own.result.p99Ms - (base?.result.p99Ms ?? Number.NaN),
        probeLatencyMicros: probe ? 1e6 / probe.result.requestsPerSecond : undefined,
        probeAddedMicros:
          probe && probeBase
            ? 1e6 / probe.result.requestsPerSecond - 1e6 / probeBase.result.requestsPerSecond
            : undefined,
        probeRedisGetsPerRequest: probe
          ? readGets(probe.counters) / probe.result.totalRequests
          : undefined,
      });
    }
  }
  // What freshgate adds, in units of what the floor adds on the same route, in the same run.
  for (const v of variants) {
    const floor = variants.find((w) => w.framework === v.framework && w.key === `${v.route}-floor`);
    if (floor && floor.addedMicros > 0 && !v.key.endsWith('-bare') && v !== floor)
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
