import { forwardFreshness } from '@freshgate/client';
import type { RouteTable } from '@freshgate/core';
import {
  fresh,
  freshDb,
  freshgateErrors,
  freshgate as freshgateExpress,
  routeTable,
} from '@freshgate/express';
import { freshgate as freshgateFastify } from '@freshgate/fastify';
import { currentDb, type FreshDataSource, type Freshgate, type Queryable } from '@freshgate/pg';
import express from 'express';
import Fastify from 'fastify';
import { bootNestTypo, nestApp } from './nest-apps.js';

/**
 * The adapters the conformance suite runs over, as kysely runs its suite over dialects: the
 * Express and Fastify adapters, and the NestJS module on each of Nest's two platforms.
 */
export const FRAMEWORKS = ['express', 'fastify', 'nest-express', 'nest-fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** One app over an engine: what supertest drives, its route table, and how to stop it. */
export interface ConformanceApp {
  target: Parameters<typeof import('supertest')>[0];
  routeTable(): RouteTable;
  close(): Promise<void>;
}

// The routes both apps serve, with the same contracts, in the same order.
export const CONTRACTS = {
  notes: undefined, // the middleware's default: read-your-writes
  feed: 'monotonic',
  eventual: 'eventual',
  strong: 'strong',
  bounded: { maxLag: '500ms', fallback: 'stale' },
  guarded: { contract: 'read-your-writes', fallback: 'error' },
} as const;

const CORS_EXPOSED = 'X-Request-Id';
const APP_COOKIE = 'app_session=1; Path=/';

async function readNote(db: Queryable, id: string) {
  const { rows } = await db.query<{ body: string }>('SELECT body FROM notes WHERE id = $1', [id]);
  return rows[0];
}

// The session key: `X-User`, or the user of an `Authorization: Bearer <user>` header (what a
// single-page or mobile app sends: no cookie, no token header).
const sessionHeader = (headers: Record<string, unknown>) => {
  if (typeof headers['x-user'] === 'string') return headers['x-user'];
  const auth = headers.authorization;
  return typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
};

/** Sign-up: creates the account, then binds the session key the handler just learned. */
async function signUp(db: FreshDataSource, body: { id: string; user: string }) {
  await db.query('INSERT INTO notes VALUES ($1, $2)', [body.id, `account of ${body.user}`]);
  await db.freshness.bindSession(body.user);
  return { lsn: db.freshness.commitLsn, token: db.freshness.token };
}

export function expressApp(engine: Freshgate): ConformanceApp {
  const app = express();
  app.set('trust proxy', true);
  // The application's own CORS setup, which freshgate must extend, not replace.
  app.use((_req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED);
    next();
  });
  app.use(express.json());
  app.use(freshgateExpress(engine, { sessionKey: (req) => sessionHeader(req.headers) }));

  app.post('/notes', async (req, res) => {
    res.append('Set-Cookie', APP_COOKIE);
    await freshDb(req).query('INSERT INTO notes VALUES ($1, $2)', [req.body.id, req.body.body]);
    res.status(201).json({ id: req.body.id });
  });
  const read =
    (db: () => Queryable = () => currentDb()) =>
    async (req: express.Request, res: express.Response) => {
      const note = await readNote(db(), String(req.params.id));
      if (note) res.json(note);
      else res.status(404).json({});
    };
  app.post('/notes-batch', async (req, res) => {
    res.append('Set-Cookie', APP_COOKIE);
    // One statement per note: every commit issues a newer token.
    for (const id of req.body.ids as string[])
      await freshDb(req).query('INSERT INTO notes VALUES ($1, $2)', [id, 'batch']);
    res.status(201).json({});
  });
  app.get('/notes/:id', async (req, res) => read(() => freshDb(req))(req, res));
  app.get('/feed/:id', fresh(CONTRACTS.feed), read());
  app.get('/eventual/:id', fresh(CONTRACTS.eventual), read());
  app.get('/strong/:id', fresh(CONTRACTS.strong), read());
  app.get('/bounded', fresh(CONTRACTS.bounded), async (req, res) => {
    const { rows } = await freshDb(req).query('SELECT count(*)::int AS n FROM notes');
    res.json(rows[0]);
  });
  app.get('/guarded/:id', fresh(CONTRACTS.guarded), read());
  app.get('/slow', fresh('eventual'), async (req, res) => {
    await freshDb(req).query('SELECT pg_sleep(0.6)');
    res.json({});
  });
  app.post('/slow-write', async (req, res) => {
    await freshDb(req).query('INSERT INTO notes VALUES ($1, $2)', [req.body.id, 'slow']);
    await freshDb(req).query('SELECT pg_sleep(0.6)');
    res.status(201).json({});
  });
  app.get('/forward', async (req, res) => {
    const downstream = await fetch(String(req.query.to), { headers: forwardFreshness(req) });
    res.status(downstream.status).json(await downstream.json());
  });
  app.post('/signup', async (req, res) => {
    res.status(201).json(await signUp(freshDb(req), req.body));
  });
  app.use(freshgateErrors());
  return { target: app, routeTable: () => routeTable(app), close: async () => {} };
}

export async function fastifyApp(engine: Freshgate): Promise<ConformanceApp> {
  const app = Fastify({ trustProxy: true });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('Access-Control-Allow-Origin', '*');
    reply.header('Access-Control-Expose-Headers', CORS_EXPOSED);
  });
  await app.register(freshgateFastify, {
    gate: engine,
    sessionKey: (request) => sessionHeader(request.headers),
  });

  const read = async (request: { params: unknown }, reply: import('fastify').FastifyReply) => {
    const note = await readNote(currentDb(), (request.params as { id: string }).id);
    return note ?? reply.code(404).send({});
  };
  app.post<{ Body: { id: string; body: string } }>('/notes', async (request, reply) => {
    reply.header('set-cookie', APP_COOKIE);
    await request.db.query('INSERT INTO notes VALUES ($1, $2)', [
      request.body.id,
      request.body.body,
    ]);
    return reply.code(201).send({ id: request.body.id });
  });
  app.post<{ Body: { ids: string[] } }>('/notes-batch', async (request, reply) => {
    reply.header('set-cookie', APP_COOKIE);
    for (const id of request.body.ids)
      await request.db.query('INSERT INTO notes VALUES ($1, $2)', [id, 'batch']);
    return reply.code(201).send({});
  });
  app.get<{ Params: { id: string } }>('/notes/:id', async (request, reply) => {
    const note = await readNote(request.db, request.params.id);
    return note ?? reply.code(404).send({});
  });
  app.get('/feed/:id', { config: { freshness: CONTRACTS.feed } }, read);
  app.get('/eventual/:id', { config: { freshness: CONTRACTS.eventual } }, read);
  app.get('/strong/:id', { config: { freshness: CONTRACTS.strong } }, read);
  app.get('/bounded', { config: { freshness: CONTRACTS.bounded } }, async (request) => {
    const { rows } = await request.db.query('SELECT count(*)::int AS n FROM notes');
    return rows[0];
  });
  app.get('/guarded/:id', { config: { freshness: CONTRACTS.guarded } }, read);
  app.get('/slow', { config: { freshness: 'eventual' } }, async (request) => {
    await request.db.query('SELECT pg_sleep(0.6)');
    return {};
  });
  app.post<{ Body: { id: string } }>('/slow-write', async (request, reply) => {
    await request.db.query('INSERT INTO notes VALUES ($1, $2)', [request.body.id, 'slow']);
    await request.db.query('SELECT pg_sleep(0.6)');
    return reply.code(201).send({});
  });
  app.get<{ Querystring: { to: string } }>('/forward', async (request, reply) => {
    const downstream = await fetch(request.query.to, { headers: forwardFreshness(request) });
    return reply.code(downstream.status).send(await downstream.json());
  });
  app.post<{ Body: { id: string; user: string } }>('/signup', async (request, reply) =>
    reply.code(201).send(await signUp(request.db, request.body)),
  );
  await app.ready();
  return {
    target: app.server,
    routeTable: () => app.freshgate.routeTable(),
    close: () => app.close(),
  };
}

export async function nestConformanceApp(
  platform: 'express' | 'fastify',
  engine: Freshgate,
): Promise<ConformanceApp> {
  const { app, service } = await nestApp(platform, engine, {
    appCookie: APP_COOKIE,
    corsExposed: CORS_EXPOSED,
    contracts: CONTRACTS,
    sessionHeader,
    readNote,
    signUp,
  });
  return {
    target: app.getHttpServer(),
    routeTable: () => service.routeTable(),
    close: () => app.close(),
  };
}

export function buildApp(framework: Framework, engine: Freshgate): Promise<ConformanceApp> {
  switch (framework) {
    case 'express':
      return Promise.resolve(expressApp(engine));
    case 'fastify':
      return fastifyApp(engine);
    case 'nest-express':
      return nestConformanceApp('express', engine);
    case 'nest-fastify':
      return nestConformanceApp('fastify', engine);
  }
}

/** Registers a route whose contract has a typo; must throw at registration. */
export async function registerTypo(framework: Framework, engine: Freshgate): Promise<void> {
  if (framework === 'nest-express' || framework === 'nest-fastify') return bootNestTypo(engine);
  if (framework === 'express') {
    express().get('/typo', fresh('monotonc' as never), (_req, res) => res.end());
    return;
  }
  const app = Fastify();
  await app.register(freshgateFastify, { gate: engine });
  try {
    app.get('/typo', { config: { freshness: 'monotonc' as never } }, async () => ({}));
    await app.ready();
  } finally {
    await app.close();
  }
}
