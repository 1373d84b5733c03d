/**
 * Section 1's load generator, run as its own process (pinned to another core than the
 * server when the machine allows). Runs a list of autocannon runs one after the other (or a
 * few at once, each on its own server) and prints their results as one JSON array on stdout.
 *
 * Configuration: the `BENCH_LOAD` environment variable, JSON of {@link LoadPlan}.
 */
import { createHmac } from 'node:crypto';
import autocannon from 'autocannon';
import { summarize } from './stats.js';

/** How each request of a run identifies its client. */
export type ClientMode = 'none' | 'token' | 'session' | 'cold-token';

/** One autocannon run. */
export interface LoadRun {
  key: string;
  url: string;
  /** `/nodb`, `/redis` (the bare app: one Redis GET), or `/item` (a primary-key SELECT of a random id in `1..items`). */
  route: 'nodb' | 'item' | 'redis';
  mode: ClientMode;
  connections: number;
  pipelining: number;
  durationSeconds: number;
  /** Stop after this many requests instead of after the duration (smoke runs). */
  amount?: number | undefined;
  /**
   * Seconds of load before the measured `durationSeconds` (default 0): the `start` mark, the
   * counted responses and their latencies begin after them, while the load goes on, so that
   * the measurement sees a server that is already saturated and out of its idle state.
   */
  rampSeconds?: number | undefined;
}

/** Everything the worker needs. */
export interface LoadPlan {
  /** Run one after the other; the runs of an array at once (each on its own server). */
  runs: (LoadRun | LoadRun[])[];
  items: number;
  /** A valid token (mode `token`); its header and claims are reused for `cold-token`. */
  token: string;
  /** HS256 secret, to sign a never-seen token per request (mode `cold-token`). */
  secret: string;
  /** Session keys with a live pin in Redis (mode `session`). */
  sessions: string[];
  /** Pause after announcing a run, so that the parent samples counters before it starts. */
  markDelayMs: number;
}

/** The numbers kept from one autocannon run. */
export interface LoadResult {
  key: string;
  requestsPerSecond: number;
  totalRequests: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  durationSeconds: number;
}

function coldTokens(token: string, secret: string): () => string {
  const [header, payload] = token.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  let counter = 0;
  return () => {
    // A distinct LSN per request makes every token new to the verified-token cache; the LSNs
    // are far below the primary's position, so nothing else about the request changes.
    counter++;
    const body = Buffer.from(
      JSON.stringify({ ...claims, lsn: `0/${counter.toString(16).toUpperCase()}` }),
    ).toString('base64url');
    const signature = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
    return `${header}.${body}.${signature}`;
  };
}

async function run(plan: LoadPlan, spec: LoadRun): Promise<LoadResult> {
  const nextCold = spec.mode === 'cold-token' ? coldTokens(plan.token, plan.secret) : undefined;
  let n = 0;
  // Every run builds its requests in setupRequest, bare or not, so that the load
  // generator does the same work per request in every variant.
  const setupRequest = (request: Record<string, unknown>) => {
    n++;
    const headers: Record<string, string> = {};
    if (spec.mode === 'token') headers['x-freshness-token'] = plan.token;
    else if (spec.mode === 'session')
      headers['x-session'] = plan.sessions[n % plan.sessions.length] as string;
    else if (nextCold) headers['x-freshness-token'] = nextCold();
    const path = spec.route === 'item' ? `/item/${1 + (n % plan.items)}` : `/${spec.route}`;
    return { ...request, path, headers };
  };
  const ramp = spec.rampSeconds ?? 0;
  // Responses inside the measured window (after the ramp), and their latencies.
  let opened: number | undefined;
  let counted = 0;
  let non2xx = 0;
  const latencies: number[] = [];
  let instance: autocannon.Instance | undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        pipelining: spec.pipelining,
        duration: ramp + spec.durationSeconds,
        ...(spec.amount ? { amount: spec.amount } : {}),
        requests: [{ setupRequest: setupRequest as never }],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  if (ramp > 0) {
    instance?.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (opened === undefined) return;
      counted++;
      if (statusCode < 200 || statusCode > 299) non2xx++;
      latencies.push(responseTime);
    });
    timer = setTimeout(() => {
      process.stderr.write(`start ${spec.key}\n`);
      opened = performance.now();
    }, ramp * 1000);
  }
  const result = await finished;
  clearTimeout(timer);
  if (ramp > 0) {
    if (opened === undefined) throw new Error(`${spec.key} ended before its ${ramp} s ramp`);
    const seconds = (performance.now() - opened) / 1000;
    const window = summarize(latencies);
    return {
      key: spec.key,
      requestsPerSecond: counted / seconds,
      totalRequests: counted,
      p50Ms: window.p50,
      p99Ms: window.p99,
      errors: result.errors + result.timeouts,
      non2xx,
      durationSeconds: seconds,
    };
  }
  return {
    key: spec.key,
    requestsPerSecond: result.requests.total / result.duration,
    totalRequests: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    durationSeconds: result.duration,
  };
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env.BENCH_LOAD ?? '') as LoadPlan;
  const results: LoadResult[] = [];
  for (const step of plan.runs) {
    const specs = Array.isArray(step) ? step : [step];
    // The parent wakes the step's servers (and lets the others sleep).
    process.stderr.write(`begin ${specs.map((spec) => spec.key).join(' ')}\n`);
    // The parent samples the server's CPU time and Redis counters at these marks (a run with a
    // ramp marks its start itself, under load).
    const unramped = specs.filter((spec) => !spec.rampSeconds);
    if (unramped.length > 0) {
      // A server woken from its sleep first finishes what its last load left in flight (up to
      // a request per connection, each with its pin read): not part of this run's counts.
      await new Promise((resolve) => setTimeout(resolve, plan.markDelayMs));
      for (const spec of unramped) process.stderr.write(`start ${spec.key}\n`);
      await new Promise((resolve) => setTimeout(resolve, plan.markDelayMs));
    }
    // Runs at once start in the order given and end each on its own.
    const ran = await Promise.all(
      specs.map((spec) =>
        run(plan, spec).then((result) => {
          process.stderr.write(`end ${spec.key}\n`);
          return result;
        }),
      ),
    );
    results.push(...ran);
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
