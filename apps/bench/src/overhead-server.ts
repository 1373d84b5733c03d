/**
 * Section 1's HTTP server, run as its own process (pinned to one core when the machine
 * allows) so that the load generator does not share its CPU. It serves two routes with one
 * framework: bare, with the floor (the least any middleware that touches a header and carries a
 * request context does: read one request header, set one response header, run the rest of the
 * request in AsyncLocalStorage), with freshgate mounted, or with the floor beside a started gate
 * that no route uses (what a gate costs by being there); the bare app serves a third,
 * `/redis` (one Redis GET, the pin path's floor). The bare server never loads freshgate:
 * freshgate's data source uses AsyncLocalStorage, whose hooks, once active, slow every
 * promise of the process, so a bare app sharing a process with it would not be bare.
 *
 * It prints one JSON line `{ http, stats }` (ports; `stats` serves pin-read counters) once
 * listening, and exits when stdin closes. Lines on stdin `profile-start` and `profile-stop <file>`
 * take a CPU profile of what happens in between (section 7). Configuration: the `BENCH_SERVER`
 * environment variable, JSON of {@link ServerConfig}.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import type { PinStore, PinUpdate } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import type { RedisPinStore } from '@freshgate/redis';
import express from 'express';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { lines } from './child.js';
import { ITEM_SQL } from './item-sql.js';
import type { ServerStats } from './overhead.js';
import { BENCH_SECRET, pinStoreRedis } from './redis-client.js';

/** What the parent passes to the server process. */
export interface ServerConfig {
  framework: 'express' | 'fastify';
  /** `floor-gate`: the floor, beside a started gate that no route is given. */
  app: 'bare' | 'floor' | 'fresh' | 'floor-gate';
  /** freshgate's `asyncContext` option (absent: the default). */
  asyncContext?: false;
  primaryUrl: string;
  replicaUrl: string;
  redisUrl: string;
}

const SESSION_HEADER = 'x-session';
/** Sampling interval of `profile-start` (µs): thousands of samples in a few seconds of load. */
const PROFILE_INTERVAL_US = 250;
const TOKEN_HEADER = 'x-freshness-token';
/** The key the bare app's `/redis` route reads (absent, as most sessions' pins are). */
const GET_KEY = 'freshgate:bench:get';

/** The floor's request context: what a request-scoped store holds at the least. */
const floorContext = new AsyncLocalStorage<{ token: string | undefined }>();

interface Running {
  port: number;
  close(): Promise<unknown>;
}

async function listenExpress(app: express.Express): Promise<Running> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function expressApp(
  replica: pg.Pool,
  fg: Freshgate | undefined,
  floor: boolean,
  redis: Redis | undefined,
): Promise<Running> {
  const app = express();
  if (floor) {
    app.use((req, res, next) => {
      const token = req.headers[TOKEN_HEADER] as string | undefined;
      res.setHeader('x-floor', token === undefined ? '0' : '1');
      floorContext.run({ token }, next);
    });
  }
  if (fg) {
    const { freshgate } = await import('@freshgate/express');
    app.use(freshgate(fg, { sessionKey: (req) => req.headers[SESSION_HEADER] as string }));
  }
  app.get('/nodb', (_req, res) => {
    res.json({ ok: true });
  });
  if (redis) {
    app.get('/redis', async (_req, res, next) => {
      try {
        await redis.get(GET_KEY);
        res.json({ ok: true });
      } catch (error) {
        next(error);
      }
    });
  }
  app.get('/item/:id', async (req, res, next) => {
    try {
      const values = [Number(req.params.id)];
      const { rows } = fg
        ? await (req.db as NonNullable<typeof req.db>).query(ITEM_SQL, values)
        : await replica.query(ITEM_SQL, values);
      res.json(rows[0] ?? null);
    } catch (error) {
      next(error);
    }
  });
  return listenExpress(app);
}

async function fastifyApp(
  replica: pg.Pool,
  fg: Freshgate | undefined,
  floor: boolean,
  redis: Redis | undefined,
): Promise<Running> {
  const app = Fastify();
  if (floor) {
    app.addHook('onRequest', (request, reply, done) => {
      const token = request.headers[TOKEN_HEADER] as string | undefined;
      reply.header('x-floor', token === undefined ? '0' : '1');
      floorContext.run({ token }, done);
    });
  }
  if (fg) {
    const { freshgate } = await import('@freshgate/fastify');
    await app.register(freshgate, {
      gate: fg,
      sessionKey: (request) => request.headers[SESSION_HEADER] as string,
    });
  }
  app.get('/nodb', async () => ({ ok: true }));
  if (redis) {
    app.get('/redis', async () => {
      await redis.get(GET_KEY);
      return { ok: true };
    });
  }
  app.get<{ Params: { id: string } }>('/item/:id', async (request) => {
    const values = [Number(request.params.id)];
    const { rows } = fg
      ? await request.db.query(ITEM_SQL, values)
      : await replica.query(ITEM_SQL, values);
    return rows[0] ?? null;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_SERVER ?? '') as ServerConfig;
  // The same pool settings in both apps: the difference is routing alone.
  // Idle connections stay open: the load comes in slices seconds apart, and a pool that closed
  // its connections in between would open them again inside a measured slice.
  const primary = new pg.Pool({ connectionString: config.primaryUrl, idleTimeoutMillis: 0 });
  const replica = new pg.Pool({ connectionString: config.replicaUrl, idleTimeoutMillis: 0 });
  primary.on('error', () => {});
  replica.on('error', () => {});
  const stats: ServerStats = { pinReads: 0, pinReadFailures: 0, pinExtends: 0, gcMs: 0 };
  // Garbage-collection pauses, for the report's GC µs per request.
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) stats.gcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });
  const closers: (() => Promise<unknown>)[] = [];

  let fg: Freshgate | undefined;
  // Pins written back after a failed write (its heartbeat does it): one script each, as a write.
  let writtenBack = () => 0;
  if (config.app === 'fresh' || config.app === 'floor-gate') {
    const { createFreshgate } = await import('@freshgate/pg');
    const { redisPinStore } = await import('@freshgate/redis');
    const redis = pinStoreRedis(config.redisUrl);
    await redis.connect();
    // Counts pin reads that failed (timeout, open circuit): under saturation the event loop
    // can hold a Redis reply past the store's timeout, and the report must say so.
    const store = redisPinStore(redis);
    writtenBack = () => store.stats().writtenBack;
    // The store as users get it (`vouch()`, `unpinnedHoldMs`, `timeoutMs`, and whatever else
    // it has: the engine asks some of them on every pin read), its calls counted.
    const pinStore: PinStore = Object.assign(Object.create(store) as RedisPinStore, {
      get: (key: string) => {
        stats.pinReads++;
        return store.get(key).catch((error: unknown) => {
          stats.pinReadFailures++;
          throw error;
        });
      },
      extend: (key: string, update: PinUpdate) => {
        stats.pinExtends++;
        return store.extend(key, update);
      },
    });
    // One replica, the pool the bare app uses: both apps get the same database capacity.
    const engine = await createFreshgate({
      primary,
      replicas: { r1: replica },
      secret: BENCH_SECRET,
      pinStore,
      asyncContext: config.asyncContext,
    });
    await engine.start();
    fg = engine;
    closers.push(
      () => engine.close(),
      async () => redis.disconnect(),
    );
  }

  const statsServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ...stats, pinExtends: stats.pinExtends + writtenBack() }));
  });
  await new Promise<void>((resolve) => statsServer.listen(0, '127.0.0.1', resolve));
  const floor = config.app === 'floor' || config.app === 'floor-gate';
  // The floor-gate app starts the gate (its monitor, its pin store's heartbeats) and mounts none.
  const mounted = config.app === 'fresh' ? fg : undefined;
  // The bare app's `/redis`: one GET with the client settings the pin store uses, the least a
  // server-side session lookup adds to a route (the pin path's floor).
  const redis = config.app === 'bare' ? pinStoreRedis(config.redisUrl) : undefined;
  if (redis) {
    await redis.connect();
    closers.push(async () => redis.disconnect());
  }
  const app =
    config.framework === 'express'
      ? await expressApp(replica, mounted, floor, redis)
      : await fastifyApp(replica, mounted, floor, redis);
  closers.unshift(
    () => app.close(),
    () => new Promise((resolve) => statsServer.close(resolve)),
  );
  const ports = {
    http: app.port,
    stats: (statsServer.address() as AddressInfo).port,
    node: process.versions.node,
  };
  process.stdout.write(`${JSON.stringify(ports)}\n`);

  // Commands from the parent, one a line: `profile-start`, `profile-stop <file>` (a V8 CPU
  // profile of what the process does in between, written to <file>; answered on stdout).
  const profiler = cpuProfiler();
  lines(process.stdin, (line) => {
    const [command, file] = line.split(' ');
    const done =
      command === 'profile-start'
        ? profiler.start().then(() => ({ profiling: true }))
        : command === 'profile-stop' && file
          ? profiler.stop(file).then(() => ({ profile: file }))
          : Promise.reject(new Error(`unknown command: ${line}`));
    done.then(
      (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`),
      (error: unknown) => process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`),
    );
  });
  // The parent closes stdin to stop the server (it also dies with the parent that way).
  process.stdin.on('end', async () => {
    for (const close of closers) await close().catch(() => {});
    await Promise.all([primary.end(), replica.end()]).catch(() => {});
    process.exit(0);
  });
}

/** The V8 sampling profiler of this process, through the inspector. */
function cpuProfiler() {
  let session: Session | undefined;
  return {
    async start(): Promise<void> {
      if (!session) {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
      }
      await session.post('Profiler.start');
    },
    async stop(file: string): Promise<void> {
      if (!session) throw new Error('profile-stop before profile-start');
      const { profile } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
    },
  };
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
