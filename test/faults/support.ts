import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type ContractInput, type TelemetryOptions, toProblem } from '@freshgate/core';
import { fresh, freshDb, freshgateErrors, freshgate as freshgateExpress } from '@freshgate/express';
import { freshgate as freshgateFastify } from '@freshgate/fastify';
import type { Freshgate, Queryable } from '@freshgate/pg';
import express from 'express';
import Fastify from 'fastify';
import { HistoryChecker, type HistoryReport, type Replica } from '../harness/index.js';

export const FRAMEWORKS = ['express', 'fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The schema every fault suite uses: one row per key, its version bumped by each write. */
export const SCHEMA = 'CREATE TABLE items (key text PRIMARY KEY, version int NOT NULL)';

// The routes both apps serve, with the same contracts.
export const ROUTES = {
  items: undefined, // the default contract: read-your-writes, fallback primary
  feed: 'monotonic',
  eventual: 'eventual',
  strong: 'strong',
  guarded: { contract: 'read-your-writes', fallback: 'error' },
  waiting: { contract: 'read-your-writes', fallback: [{ wait: '150ms' }, 'primary'] },
} as const satisfies Record<string, ContractInput | undefined>;
export type ReadRoute = keyof typeof ROUTES;
/** Writes of one `POST /batch/:key` request. */
export const BATCH_WRITES = 5;

async function readItem(db: Queryable, key: string) {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM items WHERE key = $1', [
    key,
  ]);
  return { version: rows[0]?.version ?? 0 };
}

async function writeItem(db: Queryable, key: string) {
  const { rows } = await db.query<{ version: number }>(
    `INSERT INTO items VALUES ($1, 1)
     ON CONFLICT (key) DO UPDATE SET version = items.version + 1 RETURNING version`,
    [key],
  );
  return { version: rows[0]?.version };
}

/**
 * The contract of `/twice/items/:key`: two reads of one request, a pause between them (a
 * replica may die in it), served stale when no replica qualifies.
 */
export const TWICE_CONTRACT = { contract: 'read-your-writes', fallback: 'stale' } as const;

/**
 * Reads the item twice, 30 ms apart, within one request. A second read older than the first
 * (time travel inside a request) answers 500.
 */
async function readTwice(db: Queryable, key: string) {
  const first = await readItem(db, key);
  await sleep(30);
  const second = await readItem(db, key);
  if (second.version < first.version) {
    throw new Error(`time travel: ${first.version} then ${second.version}`);
  }
  return second;
}

/** Error a handler throws on purpose: its 500 is the application's, not freshgate's. */
export class HandlerError extends Error {}

const sessionOf = (headers: Record<string, unknown>) =>
  typeof headers['x-user'] === 'string' ? headers['x-user'] : undefined;

/** A running app: its base URL and how to stop it. */
export interface App {
  framework: Framework;
  url: string;
  close(): Promise<void>;
}

function expressApp(freshgate: Freshgate): express.Express {
  const app = express();
  app.use(freshgateExpress(freshgate, { sessionKey: (req) => sessionOf(req.headers) }));
  app.post('/items/:key', async (req, res) => {
    res.status(201).json(await writeItem(freshDb(req), String(req.params.key)));
  });
  app.post('/batch/:key', async (req, res) => {
    res.append('Set-Cookie', 'app_session=1; Path=/');
    // Several commits in one request: each issues a newer token.
    let last = {};
    for (let i = 0; i < BATCH_WRITES; i++)
      last = await writeItem(freshDb(req), String(req.params.key));
    res.status(201).json(last);
  });
  for (const [name, contract] of Object.entries(ROUTES)) {
    const path = name === 'items' ? '/items/:key' : `/${name}/items/:key`;
    const handler: express.RequestHandler = async (req, res) => {
      res.json(await readItem(freshDb(req), String(req.params.key)));
    };
    if (contract === undefined) app.get(path, handler);
    else app.get(path, fresh(contract), handler);
  }
  app.get('/twice/items/:key', fresh(TWICE_CONTRACT), async (req, res) => {
    res.json(await readTwice(freshDb(req), String(req.params.key)));
  });
  app.get('/slow', fresh('strong'), async (req, res) => {
    await freshDb(req).query('SELECT pg_sleep($1)', [Number(req.query.s ?? 0.5)]);
    res.json({});
  });
  app.get('/slow-replica', fresh('eventual'), async (req, res) => {
    await freshDb(req).query('SELECT pg_sleep($1)', [Number(req.query.s ?? 0.5)]);
    res.json({});
  });
  app.get('/boom', fresh('eventual'), async (req) => {
    await freshDb(req).query('SELECT 1');
    throw new HandlerError('boom');
  });
  app.get('/bad-sql', fresh('eventual'), async (req, res) => {
    await freshDb(req).query('SELECT * FROM no_such_table');
    res.json({});
  });
  app.use(freshgateErrors());
  // The application's own last-resort handler: a plain 500 without details.
  app.use(((err, _req, res, _next) => {
    res.status(500).json({ error: 'internal', detail: describeError(err) });
  }) as express.ErrorRequestHandler);
  return app;
}

/** What an unexpected 500 was, so that a failing run names its cause. */
function describeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? String(error)}`.slice(
    0,
    200,
  );
}

async function fastifyApp(freshgate: Freshgate) {
  const app = Fastify();
  await app.register(freshgateFastify, {
    gate: freshgate,
    sessionKey: (request) => sessionOf(request.headers),
  });
  app.setErrorHandler((error, _request, reply) => {
    // Freshgate's errors come through the app's error handler, with freshgate's answer ready.
    const problem = toProblem(error);
    if (problem !== null) {
      void reply.code(problem.status).headers(problem.headers).send(JSON.stringify(problem.body));
      return;
    }
    void reply.code(500).send({ error: 'internal', detail: describeError(error) });
  });
  type KeyRequest = { Params: { key: string } };
  app.post<KeyRequest>('/items/:key', async (request, reply) =>
    reply.code(201).send(await writeItem(request.db, request.params.key)),
  );
  app.post<KeyRequest>('/batch/:key', async (request, reply) => {
    reply.header('set-cookie', 'app_session=1; Path=/');
    let last = {};
    for (let i = 0; i < BATCH_WRITES; i++) last = await writeItem(request.db, request.params.key);
    return reply.code(201).send(last);
  });
  for (const [name, contract] of Object.entries(ROUTES)) {
    const path = name === 'items' ? '/items/:key' : `/${name}/items/:key`;
    app.get<KeyRequest>(path, { config: { freshness: contract } }, async (request) =>
      readItem(request.db, request.params.key),
    );
  }
  app.get<KeyRequest>(
    '/twice/items/:key',
    { config: { freshness: TWICE_CONTRACT } },
    async (request) => readTwice(request.db, request.params.key),
  );
  type SlowRequest = { Querystring: { s?: string } };
  app.get<SlowRequest>('/slow', { config: { freshness: 'strong' } }, async (request) => {
    await request.db.query('SELECT pg_sleep($1)', [Number(request.query.s ?? 0.5)]);
    return {};
  });
  app.get<SlowRequest>('/slow-replica', { config: { freshness: 'eventual' } }, async (request) => {
    await request.db.query('SELECT pg_sleep($1)', [Number(request.query.s ?? 0.5)]);
    return {};
  });
  app.get('/boom', { config: { freshness: 'eventual' } }, async (request) => {
    await request.db.query('SELECT 1');
    throw new HandlerError('boom');
  });
  app.get('/bad-sql', { config: { freshness: 'eventual' } }, async (request) => {
    await request.db.query('SELECT * FROM no_such_table');
    return {};
  });
  return app;
}

/** Serves `freshgate` with one framework on a loopback port. */
export async function startApp(framework: Framework, freshgate: Freshgate): Promise<App> {
  if (framework === 'fastify') {
    const app = await fastifyApp(freshgate);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    return { framework, url: address, close: () => app.close() };
  }
  const server = expressApp(freshgate).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    framework,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Both apps over one freshgate. */
export async function startApps(freshgate: Freshgate): Promise<App[]> {
  return Promise.all(FRAMEWORKS.map((f) => startApp(f, freshgate)));
}

/** One HTTP exchange as a client saw it. */
export interface Exchange {
  status: number;
  headers: Headers;
  body: unknown;
  ms: number;
}

/** A fetch with a hard deadline: a request that hangs becomes an error, not a stuck test. */
export async function call(
  url: string,
  init: RequestInit & { deadlineMs?: number } = {},
): Promise<Exchange> {
  const started = performance.now();
  const response = await fetch(url, {
    ...init,
    signal: init.signal ?? AbortSignal.timeout(init.deadlineMs ?? 10_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return {
    status: response.status,
    headers: response.headers,
    body,
    ms: performance.now() - started,
  };
}

/**
 * A read served by a `stale` fallback (`/twice` asks for one when no replica qualifies): it
 * says so with `X-Freshness-Lag-Ms` on a route whose contract is not bounded, and is what the
 * route asked for, not a violation of the contract.
 */
export function isDeclaredStale(path: string, exchange: Exchange): boolean {
  return path.startsWith('/twice/') && exchange.headers.has('x-freshness-lag-ms');
}

/** The documented 503: problem+json with Retry-After. Any other 5xx is a freshgate failure. */
export function isDocumented503(exchange: Exchange): boolean {
  return (
    exchange.status === 503 &&
    exchange.headers.get('content-type')?.includes('application/problem+json') === true &&
    /^\d+$/.test(exchange.headers.get('retry-after') ?? '')
  );
}

/** One recorded metric point. */
export interface Point {
  name: string;
  value: number;
  attributes: Record<string, unknown>;
}

/**
 * An in-memory OpenTelemetry meter: records every counter/histogram point with its
 * attributes (the `@opentelemetry/sdk-metrics` package is not a dependency of this package).
 */
export function recordingMeter(): {
  meter: NonNullable<TelemetryOptions['meter']>;
  points: Point[];
  sum(name: string, attributes?: Record<string, unknown>): number;
  gauges: Map<
    string,
    (observe: (value: number, attributes: Record<string, unknown>) => void) => void
  >;
} {
  const points: Point[] = [];
  const gauges = new Map<
    string,
    (observe: (value: number, attributes: Record<string, unknown>) => void) => void
  >();
  const instrument = (name: string) => {
    const add = (value: number, attributes: Record<string, unknown> = {}) =>
      points.push({ name, value, attributes });
    return { add, record: add };
  };
  const observable = (name: string) => ({
    addCallback(
      callback: (result: { observe: (v: number, a: Record<string, unknown>) => void }) => void,
    ) {
      gauges.set(name, (observe) => callback({ observe }));
    },
    removeCallback() {},
  });
  const meter = {
    createCounter: instrument,
    createHistogram: instrument,
    createUpDownCounter: instrument,
    createObservableGauge: observable,
  };
  return {
    meter: meter as unknown as NonNullable<TelemetryOptions['meter']>,
    points,
    gauges,
    sum(name, attributes = {}) {
      let total = 0;
      for (const p of points) {
        if (p.name !== name) continue;
        if (Object.entries(attributes).every(([k, v]) => p.attributes[k] === v)) total += p.value;
      }
      return total;
    },
  };
}

/** One read as the load saw it. */
export interface Observation {
  /** When the client sent the request (`performance.now()`). */
  startedAt: number;
  /** When the client had the whole response. */
  at: number;
  status: number;
  route: string | null;
  path: ReadRoute;
  framework: Framework;
  ms: number;
}

/** What a load run observed. */
export interface LoadResult {
  requests: number;
  byStatus: Record<number, number>;
  /** 5xx other than the documented 503, and requests that failed or hung. */
  unexpected: { what: string; count: number }[];
  documented503: number;
  /** Every read: when it returned, its status, `X-Freshness-Route` and route name. */
  routes: Observation[];
  maxMs: number;
  report: HistoryReport;
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  apps: App[];
  sessions: number;
  /** Routes read, chosen at random per read. Default: `items` and `feed`. */
  reads?: readonly ReadRoute[];
  /** Share of operations that are writes. Default 0.3. */
  writeShare?: number;
  /** Pause between a session's operations, ms. Default 5. */
  thinkMs?: number;
}

/**
 * Sessions that write their own keys and read them back over HTTP, each carrying the newest
 * token it received (half of them also send a session key, so pins are exercised), recorded
 * in the black-box {@link HistoryChecker}. `stop()` ends the run and checks the history.
 */
export function runLoad(options: LoadOptions) {
  const history = new HistoryChecker();
  const reads = options.reads ?? ['items', 'feed'];
  const writeShare = options.writeShare ?? 0.3;
  const thinkMs = options.thinkMs ?? 5;
  const byStatus: Record<number, number> = {};
  const unexpected = new Map<string, number>();
  const routes: LoadResult['routes'] = [];
  let documented503 = 0;
  let requests = 0;
  let maxMs = 0;
  let running = true;
  const count = (what: string) => unexpected.set(what, (unexpected.get(what) ?? 0) + 1);
  const run = Array.from({ length: options.sessions }, async (_, i) => {
    const app = options.apps[i % options.apps.length]!;
    const session = `${app.framework}-s${i}-${Math.random().toString(36).slice(2, 8)}`;
    const keys = [`${session}:a`, `${session}:b`];
    const sessionKey = i % 2 === 0 ? session : undefined;
    let token: string | undefined;
    while (running) {
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const write = Math.random() < writeShare;
      const route = reads[Math.floor(Math.random() * reads.length)]!;
      const path = write
        ? `/items/${key}`
        : route === 'items'
          ? `/items/${key}`
          : `/${route}/items/${key}`;
      const headers: Record<string, string> = {};
      if (token) headers['x-freshness-token'] = token;
      if (sessionKey) headers['x-user'] = sessionKey;
      const start = performance.now();
      requests++;
      try {
        const exchange = await call(`${app.url}${path}`, {
          method: write ? 'POST' : 'GET',
          headers,
        });
        const end = performance.now();
        maxMs = Math.max(maxMs, exchange.ms);
        byStatus[exchange.status] = (byStatus[exchange.status] ?? 0) + 1;
        token = exchange.headers.get('x-freshness-token') ?? token;
        const served = exchange.headers.get('x-freshness-route');
        if (!write) {
          routes.push({
            startedAt: start,
            at: end,
            status: exchange.status,
            route: served,
            path: route,
            framework: app.framework,
            ms: exchange.ms,
          });
        }
        if (exchange.status >= 500) {
          if (isDocumented503(exchange)) documented503++;
          else count(`${exchange.status} ${path.split('/')[1]}: ${JSON.stringify(exchange.body)}`);
        } else if (write && exchange.status === 201) {
          history.write(session, key, (exchange.body as { version: number }).version, end);
        } else if (!write && exchange.status === 200) {
          // Eventual reads promise nothing about the session's writes: not checked.
          if (route !== 'eventual') {
            const version = (exchange.body as { version: number }).version;
            history.read(session, key, version, start, end, served ?? undefined);
          }
        } else {
          count(`${exchange.status} ${path}`);
        }
      } catch (error) {
        count(`request failed: ${(error as Error).name} ${(error as Error).message}`);
      }
      if (thinkMs > 0) await sleep(thinkMs * (0.5 + Math.random()));
    }
  });
  return {
    get requests() {
      return requests;
    },
    routes,
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(run);
      return {
        requests,
        byStatus,
        unexpected: [...unexpected].map(([what, n]) => ({ what, count: n })),
        documented503,
        routes,
        maxMs,
        report: history.report(),
      };
    },
  };
}

/** Pools' checked-out and waiting connections, per node. */
export function poolUsage(freshgate: Freshgate) {
  const usage: Record<string, { busy: number; waiting: number; total: number }> = {};
  for (const [name, pool] of [['primary', freshgate.primary] as const, ...freshgate.replicas]) {
    usage[name] = {
      busy: pool.totalCount - pool.idleCount,
      waiting: pool.waitingCount,
      total: pool.totalCount,
    };
  }
  return usage;
}

/** Waits until no pool has a checked-out or waiting connection; returns the last usage seen. */
export async function untilPoolsIdle(freshgate: Freshgate, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const usage = poolUsage(freshgate);
    const idle = Object.values(usage).every((u) => u.busy === 0 && u.waiting === 0);
    if (idle || Date.now() > deadline) return usage;
    await sleep(20);
  }
}

/** Everything written to stdout, stderr and the console while `capture` runs. */
export function captureOutput() {
  const chunks: string[] = [];
  const stdout = process.stdout.write.bind(process.stdout);
  const stderr = process.stderr.write.bind(process.stderr);
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originals = methods.map((m) => console[m]);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    chunks.push(String(chunk));
    return (stdout as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    chunks.push(String(chunk));
    return (stderr as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  for (const m of methods) {
    console[m] = (...args: unknown[]) => chunks.push(args.map(String).join(' '));
  }
  return {
    text: () => chunks.join('\n'),
    restore() {
      process.stdout.write = stdout;
      process.stderr.write = stderr;
      methods.forEach((m, i) => {
        console[m] = originals[i]!;
      });
    },
  };
}

/** A full garbage collection, when the runtime allows it (for heap measurements). */
export function collectGarbage(): void {
  setFlagsFromString('--expose_gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * A per-instance fault hook: the same ioredis client, seen through a proxy whose commands
 * fail at once while `cut` is set (as if this instance alone lost its network path to Redis,
 * while other instances keep theirs). Connection status and events stay the real client's.
 */
export function cuttableRedis<T extends object>(client: T): { client: T; cut: boolean } {
  const hook = { client: client, cut: false };
  hook.client = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function' || property === 'on' || property === 'once') return value;
      return (...args: unknown[]) =>
        hook.cut
          ? Promise.reject(new Error('cut off from Redis (fault hook)'))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return hook;
}

/** The three kinds of clients: a token in a header, a token in the cookie, a session key alone. */
export const CLIENT_KINDS = ['token', 'cookie', 'key'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** What {@link kindsLoad} observed. */
export interface KindsLoadResult {
  requests: number;
  seconds: number;
  /** Successful reads per kind of client. */
  reads: Record<ClientKind, number>;
  /** Every 5xx and failed request, named with its kind, app and route. */
  fiveHundreds: string[];
  /** Reads served by the primary (`X-Freshness-Route: primary`). */
  primaryReads: number;
  /** Reads of `/twice` served by its `stale` fallback, which says so: not checked. */
  declaredStale: number;
  report: HistoryReport;
}

/** Options of {@link kindsLoad}. */
export interface KindsLoadOptions {
  /** The app of each request: e.g. one per session, or any at random (no stickiness). */
  app: (session: number) => App;
  sessionsPerKind: number;
  /** Mean pause after each operation, ms. */
  thinkMs: number;
  /** Per-request deadline, ms. Default the {@link call} default. */
  deadlineMs?: number;
  /** Sessions start one after the other over this long, ms (the load ramps up). Default 0. */
  rampMs?: number;
  /** Honour `Retry-After`: after a 503 the session pauses this long, ms. Default 0. */
  retryAfterMs?: number;
}

/**
 * Sessions of the three kinds write their own keys and read them back (read-your-writes,
 * monotonic and a two-read request, `/twice`); token clients send a session key too, so their
 * pin lookups are exercised. The history checker sees every acknowledged write and completed
 * read; `stop()` ends the run.
 */
export function kindsLoad(options: KindsLoadOptions) {
  const history = new HistoryChecker();
  const reads: Record<ClientKind, number> = { token: 0, cookie: 0, key: 0 };
  const fiveHundreds: string[] = [];
  let requests = 0;
  let primaryReads = 0;
  let declaredStale = 0;
  let running = true;
  const startedAt = performance.now();
  const loops = Array.from(
    { length: options.sessionsPerKind * CLIENT_KINDS.length },
    async (_, i) => {
      const kind = CLIENT_KINDS[i % CLIENT_KINDS.length]!;
      const session = `${kind}-${i}-${Math.random().toString(36).slice(2, 8)}`;
      const keys = [`${session}:a`, `${session}:b`];
      let token: string | undefined;
      let cookie: string | undefined;
      if (options.rampMs) await sleep((options.rampMs * i) / (options.sessionsPerKind * 3));
      while (running) {
        const app = options.app(i);
        const key = keys[Math.floor(Math.random() * keys.length)]!;
        const write = Math.random() < 0.3;
        const route = ['items', 'feed', 'twice'][Math.floor(Math.random() * 3)]!;
        const path = write || route === 'items' ? `/items/${key}` : `/${route}/items/${key}`;
        const headers: Record<string, string> = {};
        if (kind === 'token' && token) headers['x-freshness-token'] = token;
        if (kind === 'cookie' && cookie) headers.cookie = `fg_fresh=${cookie}`;
        if (kind !== 'cookie') headers['x-user'] = session;
        const start = performance.now();
        requests++;
        let exchange: Exchange;
        try {
          exchange = await call(`${app.url}${path}`, {
            method: write ? 'POST' : 'GET',
            headers,
            ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
          });
        } catch (error) {
          fiveHundreds.push(
            `${kind} ${write ? 'POST' : 'GET'} ${path} request failed: ${(error as Error).message}`,
          );
          continue;
        }
        const end = performance.now();
        token = exchange.headers.get('x-freshness-token') ?? token;
        const set = /(?:^|,\s*)fg_fresh=([^;]*)/.exec(exchange.headers.get('set-cookie') ?? '');
        if (set) cookie = set[1] || undefined;
        const served = exchange.headers.get('x-freshness-route') ?? undefined;
        if (exchange.status >= 500) {
          fiveHundreds.push(
            `${kind} ${exchange.status}${isDocumented503(exchange) ? ' (documented)' : ''} ${app.framework} ${write ? 'POST' : 'GET'} ${path}: ${JSON.stringify(exchange.body).slice(0, 260)}`,
          );
          if (exchange.status === 503 && options.retryAfterMs) await sleep(options.retryAfterMs);
        } else if (write && exchange.status === 201) {
          history.write(session, key, (exchange.body as { version: number }).version, end);
        } else if (!write && exchange.status === 200) {
          reads[kind]++;
          if (served === 'primary') primaryReads++;
          if (isDeclaredStale(path, exchange)) declaredStale++;
          else {
            history.read(
              session,
              key,
              (exchange.body as { version: number }).version,
              start,
              end,
              `${kind} ${app.framework} ${route} ${served}`,
            );
          }
        } else {
          fiveHundreds.push(`${kind} unexpected ${exchange.status} ${path}`);
        }
        await sleep(options.thinkMs * (0.5 + Math.random()));
      }
    },
  );
  return {
    get requests() {
      return requests;
    },
    async stop(): Promise<KindsLoadResult> {
      running = false;
      await Promise.all(loops);
      return {
        requests,
        seconds: (performance.now() - startedAt) / 1000,
        reads,
        fiveHundreds,
        primaryReads,
        declaredStale,
        report: history.report(),
      };
    },
  };
}

/**
 * The lag storm of the fault suites: one replica paused at a time, or replaying up to 800 ms
 * late. `both`: each phase pauses one replica while the other replays 800 ms late, so that
 * reads right after a write find neither caught up.
 */
export function lagStorm(
  r1: Replica,
  r2: Replica,
  options: { phaseMs?: number; both?: boolean } = {},
) {
  const phaseMs = options.phaseMs ?? 1_200;
  let storming = true;
  const phases: [() => Promise<void>, () => Promise<void>][] = options.both
    ? [
        [
          () => Promise.all([r1.pause(), r2.setApplyDelay(800)]).then(() => {}),
          () => Promise.all([r1.resume(), r2.setApplyDelay(0)]).then(() => {}),
        ],
        [
          () => Promise.all([r2.pause(), r1.setApplyDelay(800)]).then(() => {}),
          () => Promise.all([r2.resume(), r1.setApplyDelay(0)]).then(() => {}),
        ],
      ]
    : [
        [() => r1.pause(), () => r1.resume()],
        [() => r2.setApplyDelay(800), () => r2.setApplyDelay(0)],
        [() => r2.pause(), () => r2.resume()],
        [() => r1.setApplyDelay(500), () => r1.setApplyDelay(0)],
      ];
  const loop = (async () => {
    for (let i = 0; storming; i++) {
      const [enter, leave] = phases[i % phases.length]!;
      await enter();
      await sleep(phaseMs);
      await leave();
      await sleep(200);
    }
  })();
  return async () => {
    storming = false;
    await loop;
  };
}
