import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@freshgate/core';
import { createFreshgate, currentDb, type Freshgate } from '@freshgate/pg';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fresh, freshgate, freshgateErrors, routeTable } from './index.js';

// No database is reached here: the pools are created lazily and these requests never query.
// Routing over real replicas is covered by the conformance suite in test/conformance.
let engine: Freshgate;
let strict: Freshgate;
const options = {
  primary: 'postgres://127.0.0.1:1/none',
  replicas: {},
  secret: 'express-unit-test-secret-long-enough!',
};
beforeAll(async () => {
  engine = await createFreshgate(options);
  strict = await createFreshgate({ ...options, strict: true });
});
afterAll(async () => {
  await engine.close();
  await strict.close();
});

async function serve(app: express.Express) {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((r) => server.close(r)) };
}

describe('freshgate() options', () => {
  it('fails at start-up on a bad engine, a typo in an option, or an unknown contract', () => {
    expect(() => freshgate({} as never)).toThrow(/`engine`/);
    expect(() => freshgate(engine, { sesionKey: () => 'x' } as never)).toThrow(
      /`sesionKey`.*Did you mean "sessionKey"/,
    );
    expect(() => freshgate(engine, { contract: 'eventul' as never })).toThrow(ConfigError);
    expect(() => fresh({ maxLag: '2s', fallback: 'stael' as never })).toThrow(
      /Did you mean "stale"/,
    );
  });

  it('does not mutate the options object', () => {
    const given = Object.freeze({ contract: 'eventual' as const });
    expect(() => freshgate(engine, given)).not.toThrow();
  });
});

describe('freshgate() per request', () => {
  it('gives the chain req.db, req.freshness with the route contract, and currentDb()', async () => {
    const app = express();
    app.use(freshgate(engine, { contract: 'eventual' }));
    app.get('/default', (req, res) => {
      res.json({ level: req.freshness.contract.level, same: currentDb() === req.db });
    });
    app.get('/feed', fresh('monotonic'), (req, res) => {
      res.json({ level: req.freshness.contract.level });
    });
    const router = express.Router();
    router.use(fresh('strong'));
    router.get('/own', (req, res) => res.json({ level: req.freshness.contract.level }));
    router.get('/override', fresh({ maxLag: '2s' }), (req, res) =>
      res.json({ level: req.freshness.contract.level }),
    );
    app.use('/admin', router);
    const { base, close } = await serve(app);
    try {
      expect(await (await fetch(`${base}/default`)).json()).toEqual({
        level: 'eventual',
        same: true,
      });
      expect(await (await fetch(`${base}/feed`)).json()).toEqual({ level: 'monotonic' });
      expect(await (await fetch(`${base}/admin/own`)).json()).toEqual({ level: 'strong' });
      expect(await (await fetch(`${base}/admin/override`)).json()).toEqual({ level: 'bounded' });
    } finally {
      await close();
    }
  });

  it('answers a rejected token with 400 problem+json in strict mode and ignores it otherwise', async () => {
    for (const [fg, status] of [
      [strict, 400],
      [engine, 200],
    ] as const) {
      const app = express();
      app.use(freshgate(fg));
      app.get('/x', (_req, res) => res.json({}));
      const { base, close } = await serve(app);
      try {
        const res = await fetch(`${base}/x`, { headers: { 'X-Freshness-Token': 'garbage' } });
        expect(res.status).toBe(status);
        if (status === 400) {
          expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
          expect(await res.json()).toMatchObject({ status: 400, reason: 'malformed' });
        }
      } finally {
        await close();
      }
    }
  });

  it('passes a failing session-key resolver to next(err), and other errors past freshgateErrors()', async () => {
    const app = express();
    app.use(
      freshgate(engine, {
        sessionKey: async () => {
          throw new Error('session store down');
        },
      }),
    );
    app.get('/x', (_req, res) => res.json({}));
    app.use(freshgateErrors());
    app.use((err: Error, _req: express.Request, res: express.Response, _next: unknown) => {
      res.status(502).json({ message: err.message });
    });
    const { base, close } = await serve(app);
    try {
      const res = await fetch(`${base}/x`);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ message: 'session store down' });
    } finally {
      await close();
    }
  });

  it('fails a route whose fresh() runs without freshgate() mounted', async () => {
    const app = express();
    app.get('/x', fresh('eventual'), (_req, res) => res.json({}));
    app.use((err: Error, _req: express.Request, res: express.Response, _next: unknown) => {
      res.status(500).json({ name: err.name });
    });
    const { base, close } = await serve(app);
    try {
      expect(await (await fetch(`${base}/x`)).json()).toEqual({ name: 'ConfigError' });
    } finally {
      await close();
    }
  });
});

describe('routeTable(app)', () => {
  it('lists routes under freshgate() with their own, router or default contract', () => {
    const app = express();
    app.get('/before', (_req, res) => res.end()); // not served by freshgate: not listed
    app.use(freshgate(engine));
    app.get('/cases/:id', (_req, res) => res.end());
    app.post('/cases', fresh('strong'), (_req, res) => res.end());
    const reports = express.Router();
    reports.use(fresh({ contract: 'eventual', tags: { pool: 'reporting' } }));
    reports.get('/daily', (_req, res) => res.end());
    reports.get('/live', fresh({ maxLag: '2s', fallback: 'stale' }), (_req, res) => res.end());
    app.use('/reports', reports);
    app.get('/after', (_req, res) => res.end()); // the router default does not leak out

    const table = routeTable(app);
    expect(table.routes.map((r) => [r.method, r.path, r.contract, r.fallback, r.tags])).toEqual([
      ['GET', '/cases/:id', 'read-your-writes', ['primary'], null],
      ['POST', '/cases', 'strong', [], null],
      ['GET', '/reports/daily', 'eventual', ['primary'], { pool: 'reporting' }],
      ['GET', '/reports/live', 'maxLag=2000ms', ['stale'], null],
      ['GET', '/after', 'read-your-writes', ['primary'], null],
    ]);
    expect(table.markdown).toContain(
      '| GET | `/reports/daily` | eventual | primary | pool=reporting |',
    );
  });
});
