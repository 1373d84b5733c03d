import { ConfigError } from '@freshgate/core';
import { createFreshgate, currentDb, type Freshgate } from '@freshgate/pg';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshgate } from './index.js';

// No database is reached here: the pools are created lazily and these requests never query.
// Routing over real replicas is covered by the conformance suite in test/conformance.
let engine: Freshgate;
let strict: Freshgate;
const options = {
  primary: 'postgres://127.0.0.1:1/none',
  replicas: {},
  secret: 'fastify-unit-test-secret-long-enough!',
};
beforeAll(async () => {
  engine = await createFreshgate(options);
  strict = await createFreshgate({ ...options, strict: true });
});
afterAll(async () => {
  await engine.close();
  await strict.close();
});

describe('freshgate plugin registration', () => {
  it('fails on a missing engine or a typo in an option', async () => {
    await expect(Fastify().register(freshgate, {} as never)).rejects.toThrow(/`engine`/);
    await expect(
      Fastify().register(freshgate, { engine, sesionKey: () => 'x' } as never),
    ).rejects.toThrow(/`sesionKey`.*Did you mean "sessionKey"/);
  });

  it('fails when a route declares an unknown contract, naming the route', async () => {
    const app = Fastify();
    await app.register(freshgate, { engine });
    expect(() =>
      app.get('/feed', { config: { freshness: 'monotnic' as never } }, async () => ({})),
    ).toThrow(ConfigError);
    expect(() =>
      app.get('/x', { config: { freshness: { maxLag: '1s', fallbak: 'stale' } as never } }, h),
    ).toThrow(/GET \/x.*Did you mean "fallback"/);
    await app.close();
  });
});

const h = async () => ({});

describe('freshgate plugin per request', () => {
  it('decorates request.db and request.freshness with the route contract; false turns it off', async () => {
    const app = Fastify();
    await app.register(freshgate, { engine, contract: 'eventual' });
    const describeRequest = async (request: import('fastify').FastifyRequest) => ({
      level: request.freshness?.contract.level ?? null,
      db: request.db !== null,
      current: request.db !== null && currentDb() === request.db,
    });
    app.get('/default', describeRequest);
    app.get('/feed', { config: { freshness: 'monotonic' } }, describeRequest);
    app.get('/off', { config: { freshness: false } }, describeRequest);
    expect((await app.inject('/default')).json()).toEqual({
      level: 'eventual',
      db: true,
      current: true,
    });
    expect((await app.inject('/feed')).json()).toEqual({
      level: 'monotonic',
      db: true,
      current: true,
    });
    expect((await app.inject('/off')).json()).toEqual({ level: null, db: false, current: false });
    await app.close();
  });

  it('runs before the route preHandlers, so they can use request.db', async () => {
    const app = Fastify();
    await app.register(freshgate, { engine });
    app.get(
      '/x',
      {
        preHandler: async (request, reply) => {
          reply.header('x-had-db', String(request.db !== null));
        },
      },
      h,
    );
    expect((await app.inject('/x')).headers['x-had-db']).toBe('true');
    await app.close();
  });

  it('answers a rejected token with 400 problem+json in strict mode and leaves other errors to the app', async () => {
    const app = Fastify();
    await app.register(freshgate, { engine: strict });
    app.setErrorHandler((error, _request, reply) => {
      reply.code(418).send({ app: (error as Error).message });
    });
    app.get('/x', h);
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    app.get(
      '/own',
      {
        errorHandler: (error, _request, reply) => {
          reply.code(409).send({ route: error.message });
        },
      },
      async () => {
        throw new Error('mine');
      },
    );
    const rejected = await app.inject({ url: '/x', headers: { 'x-freshness-token': 'garbage' } });
    expect(rejected.statusCode).toBe(400);
    expect(rejected.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(rejected.json()).toMatchObject({ status: 400, reason: 'malformed' });
    expect((await app.inject('/x')).statusCode).toBe(200);
    expect((await app.inject('/boom')).json()).toEqual({ app: 'boom' });
    const own = await app.inject('/own');
    expect([own.statusCode, own.json()]).toEqual([409, { route: 'mine' }]);
    await app.close();
  });

  it('lists its routes (not the HEAD twins, not the ones turned off) in fastify.freshgate.routeTable()', async () => {
    const app = Fastify();
    await app.register(freshgate, { engine });
    app.get('/cases/:id', h);
    app.post('/cases', { config: { freshness: 'strong' } }, h);
    app.get('/dash', { config: { freshness: { maxLag: '2s', fallback: 'stale' } } }, h);
    app.get('/health', { config: { freshness: false } }, h);
    await app.ready();
    expect(app.freshgate.engine).toBe(engine);
    const table = app.freshgate.routeTable();
    expect(table.routes.map((r) => [r.method, r.path, r.contract, r.fallback])).toEqual([
      ['GET', '/cases/:id', 'read-your-writes', ['primary']],
      ['POST', '/cases', 'strong', []],
      ['GET', '/dash', 'maxLag=2000ms', ['stale']],
    ]);
    expect(table.markdown).toContain('| GET | `/dash` | maxLag=2000ms | stale | — |');
    await app.close();
  });
});
