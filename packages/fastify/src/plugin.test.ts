import { ConfigError, FreshnessUnavailableError } from '@freshgate/core';
import { createTestHost, type TestHost } from '@freshgate/core/testing';
import { createFreshgate } from '@freshgate/pg';
import Fastify from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshgate } from './index.js';

// No database here: a test host stands in for the Freshgate. Routing over real replicas is
// covered by the conformance suite in test/conformance.
let host: TestHost;
let engine: never;
let strict: never;
beforeAll(async () => {
  host = await createTestHost();
  engine = host as never;
  strict = (await createTestHost({ strict: true })) as never;
});

describe('freshgate plugin registration', () => {
  it('fails on a missing gate or a typo in an option', async () => {
    await expect(Fastify().register(freshgate, {} as never)).rejects.toThrow(/`gate`/);
    await expect(
      Fastify().register(freshgate, { gate: engine, sesionKey: () => 'x' } as never),
    ).rejects.toThrow(/`sesionKey`.*Did you mean "sessionKey"/);
  });

  it('fails when a route declares an unknown contract, naming the route', async () => {
    const app = Fastify();
    await app.register(freshgate, { gate: engine });
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
    await app.register(freshgate, { gate: engine, contract: 'eventual' });
    const describeRequest = async (request: import('fastify').FastifyRequest) => {
      if (request.routeOptions.config.freshness === false) {
        const error = (() => {
          try {
            return request.db;
          } catch (e) {
            return e;
          }
        })();
        return { level: null, db: false, error: (error as ConfigError).option };
      }
      return {
        level: request.freshness.contract.level,
        db: true,
        current: host.current() === request.db,
      };
    };
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
    expect((await app.inject('/off')).json()).toEqual({
      level: null,
      db: false,
      error: 'config.freshness',
    });
    await app.close();
  });

  it('runs before the route preHandlers, so they can use request.db', async () => {
    const app = Fastify();
    await app.register(freshgate, { gate: engine });
    app.get(
      '/x',
      {
        preHandler: async (request, reply) => {
          reply.header('x-had-db', String(request.db.freshness !== undefined));
        },
      },
      h,
    );
    expect((await app.inject('/x')).headers['x-had-db']).toBe('true');
    await app.close();
  });

  it('answers a rejected token with 400 problem+json when the app has no error handler', async () => {
    const app = Fastify();
    await app.register(freshgate, { gate: strict });
    app.get('/x', h);
    const rejected = await app.inject({ url: '/x', headers: { 'x-freshness-token': 'garbage' } });
    expect(rejected.statusCode).toBe(400);
    expect(rejected.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(rejected.json()).toMatchObject({ status: 400, reason: 'malformed' });
    expect((await app.inject('/x')).statusCode).toBe(200);
    await app.close();
  });

  it("sends freshgate's errors through the app's error handler (setErrorHandler), and a route's own handler wins", async () => {
    const app = Fastify();
    await app.register(freshgate, { gate: strict });
    app.setErrorHandler((error, _request, reply) => {
      const e = error as Error & { statusCode?: number; code?: string };
      reply.code(418).send({ app: e.code ?? e.message, status: e.statusCode ?? null });
    });
    app.get('/x', h);
    app.get('/unavailable', async () => {
      throw new FreshnessUnavailableError('no-replica-caught-up', 2);
    });
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
    expect([rejected.statusCode, rejected.json()]).toEqual([
      418,
      { app: 'ERR_FRESHGATE_TOKEN_REJECTED', status: 400 },
    ]);
    expect((await app.inject('/unavailable')).json()).toEqual({
      app: 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE',
      status: 503,
    });
    expect((await app.inject('/boom')).json()).toEqual({ app: 'boom', status: null });
    const own = await app.inject('/own');
    expect([own.statusCode, own.json()]).toEqual([409, { route: 'mine' }]);
    await app.close();
  });

  it('onError replaces both the default answer and the app handler for freshgate errors', async () => {
    const app = Fastify();
    await app.register(freshgate, {
      gate: engine,
      onError: (error, _request, reply) => reply.code(599).send({ mine: error.code }),
    });
    app.setErrorHandler((_error, _request, reply) => {
      reply.code(500).send({ app: true });
    });
    app.get('/unavailable', async () => {
      throw new FreshnessUnavailableError('no-replica-caught-up', 2);
    });
    const res = await app.inject('/unavailable');
    expect([res.statusCode, res.json()]).toEqual([
      599,
      { mine: 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE' },
    ]);
    await app.close();
  });

  it('answers every request with a NotStartedError naming the fix when the Freshgate was never started', async () => {
    const gate = await createFreshgate({
      primary: 'postgres://127.0.0.1:1/none',
      replicas: {},
      secret: 'fastify-unit-test-secret-long-enough!',
    });
    const app = Fastify();
    try {
      await app.register(freshgate, { gate });
      app.get('/x', h);
      const res = await app.inject('/x');
      expect(res.statusCode).toBe(500);
      expect(res.json().message).toMatch(/await gate\.start\(\)/);
    } finally {
      await app.close();
      await gate.close();
    }
  });

  it('lists its routes (not the HEAD twins, not the ones turned off) in fastify.freshgate.routeTable()', async () => {
    const app = Fastify();
    await app.register(freshgate, { gate: engine });
    app.get('/cases/:id', h);
    app.post('/cases', { config: { freshness: 'strong' } }, h);
    app.get('/dash', { config: { freshness: { maxLag: '2s', fallback: 'stale' } } }, h);
    app.get('/health', { config: { freshness: false } }, h);
    await app.ready();
    expect(app.freshgate.gate).toBe(engine);
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
