import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@freshgate/core';
import { createTestHost, type TestHost } from '@freshgate/core/testing';
import { createFreshgate } from '@freshgate/pg';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { fresh, freshDb, freshgate, freshgateErrors, routeTable } from './index.js';

// No database here: a test host stands in for the Freshgate. Routing over real replicas is
// covered by the conformance suite in test/conformance.
let host: TestHost;
let strictHost: TestHost;
let engine: never;
let strict: never;
beforeAll(async () => {
  host = await createTestHost();
  strictHost = await createTestHost({ strict: true });
  engine = host as never;
  strict = strictHost as never;
});

async function serve(app: express.Express) {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((r) => server.close(r)) };
}

describe('freshgate() options', () => {
  it('fails at start-up on a bad gate, a typo in an option, or an unknown contract', () => {
    expect(() => freshgate({} as never)).toThrow(/`gate`/);
    expect(() => freshgate(engine, { onError: 'json' } as never)).toThrow(/`onError`/);
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
  it('gives the chain req.db, req.freshness with the route contract, inside the request run()', async () => {
    const app = express();
    app.use(freshgate(engine, { contract: 'eventual' }));
    app.get('/default', (req, res) => {
      res.json({ level: freshDb(req).freshness.contract.level, same: host.current() === req.db });
    });
    app.get('/feed', fresh('monotonic'), (req, res) => {
      res.json({ level: freshDb(req).freshness.contract.level });
    });
    const router = express.Router();
    router.use(fresh('strong'));
    router.get('/own', (req, res) => res.json({ level: freshDb(req).freshness.contract.level }));
    router.get('/override', fresh({ maxLag: '2s' }), (req, res) =>
      res.json({ level: freshDb(req).freshness.contract.level }),
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

  it('req.db and req.freshness read res.locals through accessors, in a mounted sub-app too; assignments hold', async () => {
    const app = express();
    app.use(freshgate(engine));
    const same = (req: express.Request) =>
      req.freshness !== undefined &&
      req.freshness === freshDb(req).freshness &&
      req.db === host.current() &&
      !Object.hasOwn(req, 'db') &&
      !Object.hasOwn(req, 'freshness');
    app.get('/here', (req, res) =>
      // Nothing of freshgate's shows among the locals a view or a JSON dump sees.
      res.json({
        same: same(req),
        locals: Object.keys(res.locals),
        json: JSON.stringify(res.locals),
      }),
    );
    const sub = express();
    sub.get('/there', fresh('strong'), (req, res) =>
      res.json({ same: same(req), level: req.freshness?.contract.level }),
    );
    app.use('/sub', sub);
    app.get('/assigned', (req, res) => {
      const mine = { contract: { level: 'mine' } } as never;
      req.freshness = mine;
      const db = { freshness: mine } as never;
      req.db = db;
      res.json({
        kept: req.freshness === mine && req.db === db,
        own: Object.hasOwn(req, 'freshness') && Object.hasOwn(req, 'db'),
      });
    });
    // An app without freshgate() in the same process: nothing there.
    const other = express();
    other.get('/off', (req, res) =>
      res.json({ none: req.freshness === undefined && req.db === undefined }),
    );
    const served = await serve(app);
    const plain = await serve(other);
    try {
      expect(await (await fetch(`${served.base}/here`)).json()).toEqual({
        same: true,
        locals: [],
        json: '{}',
      });
      expect(await (await fetch(`${served.base}/sub/there`)).json()).toEqual({
        same: true,
        level: 'strong',
      });
      expect(await (await fetch(`${served.base}/assigned`)).json()).toEqual({
        kept: true,
        own: true,
      });
      expect(await (await fetch(`${plain.base}/off`)).json()).toEqual({ none: true });
    } finally {
      await served.close();
      await plain.close();
    }
  });

  it("gives own properties where an app's request prototype holds its own db, or res.locals is missing or shared", async () => {
    const app = express();
    const theirs = { theirs: true };
    Object.assign(app.request, { db: theirs });
    app.use(freshgate(engine));
    app.get('/own', (req, res) =>
      res.json({
        own: Object.hasOwn(req, 'db') && Object.hasOwn(req, 'freshness'),
        same: req.db === host.current() && req.freshness === req.db?.freshness,
      }),
    );
    const bare = express();
    bare.use((_req, res, next) => {
      res.locals = undefined as never;
      next();
    });
    bare.use(freshgate(engine));
    bare.get('/own', (req, res) =>
      res.json({ own: Object.hasOwn(req, 'db'), same: req.db === host.current() }),
    );
    // A res.locals shared between responses never hands one request another's data source.
    const shared = express();
    const locals = Object.create(null);
    shared.use((_req, res, next) => {
      res.locals = locals;
      next();
    });
    shared.use(freshgate(engine));
    // The first request waits inside its handler until the second one is in its own.
    let arrived: () => void = () => {};
    const second = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let count = 0;
    shared.get('/own', async (req, res) => {
      const mine = host.current();
      if (++count === 1) await second;
      else arrived();
      res.json({ same: req.db === mine });
    });
    const served = await serve(app);
    const other = await serve(bare);
    const third = await serve(shared);
    try {
      expect(await (await fetch(`${served.base}/own`)).json()).toEqual({ own: true, same: true });
      expect(await (await fetch(`${other.base}/own`)).json()).toEqual({ own: true, same: true });
      const both = [fetch(`${third.base}/own`), fetch(`${third.base}/own`)];
      for (const answer of await Promise.all(both))
        expect(await answer.json()).toEqual({ same: true });
      // Their prototype's value is left alone for requests freshgate does not serve.
      expect((Object.create(app.request) as { db: unknown }).db).toBe(theirs);
    } finally {
      await served.close();
      await other.close();
      await third.close();
    }
  });

  it('sets both on a request object Express did not make', async () => {
    const middleware = freshgate(engine);
    const req = { headers: {}, secure: false, method: 'GET', url: '/' } as express.Request;
    await new Promise<void>((done, fail) =>
      middleware(req, {} as express.Response, (error?: unknown) =>
        error === undefined ? done() : fail(error),
      ),
    );
    expect(Object.hasOwn(req, 'db') && Object.hasOwn(req, 'freshness')).toBe(true);
    expect(req.freshness).toBe(req.db?.freshness);
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

  it('onError replaces the problem+json answer, for begin errors and in freshgateErrors()', async () => {
    const app = express();
    const onError = (error: { code: string }, _req: unknown, res: express.Response) => {
      res.status(418).json({ code: error.code });
    };
    app.use(freshgate(strict, { onError }));
    app.get('/x', (_req, res) => res.json({}));
    app.get('/unavailable', async (_req, _res, next) => {
      const { FreshnessUnavailableError } = await import('@freshgate/core');
      next(new FreshnessUnavailableError('no-replica-caught-up', 1));
    });
    app.use(freshgateErrors());
    const { base, close } = await serve(app);
    try {
      const rejected = await fetch(`${base}/x`, { headers: { 'X-Freshness-Token': 'garbage' } });
      expect([rejected.status, await rejected.json()]).toEqual([
        418,
        { code: 'ERR_FRESHGATE_TOKEN_REJECTED' },
      ]);
      const unavailable = await fetch(`${base}/unavailable`);
      expect([unavailable.status, await unavailable.json()]).toEqual([
        418,
        { code: 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE' },
      ]);
    } finally {
      await close();
    }
  });

  it('freshgateErrors() answers with the onError of the freshgate() that started the request, the innermost on a path with two', async () => {
    const app = express();
    const answeredBy =
      (name: string) => (error: { code: string }, _req: unknown, res: express.Response) => {
        res.status(418).json({ by: name, code: error.code });
      };
    const unavailable = async (_req: unknown, _res: unknown, next: express.NextFunction) => {
      const { FreshnessUnavailableError } = await import('@freshgate/core');
      next(new FreshnessUnavailableError('no-replica-caught-up', 1));
    };
    app.get('/outer', freshgate(engine, { onError: answeredBy('outer') }), unavailable);
    app.get(
      '/inner',
      freshgate(engine, { onError: answeredBy('outer') }),
      freshgate(engine, { onError: answeredBy('inner') }),
      unavailable,
    );
    app.get(
      '/inherited',
      freshgate(engine, { onError: answeredBy('outer') }),
      freshgate(engine),
      unavailable,
    );
    app.get('/none', freshgate(engine), unavailable);
    app.use(freshgateErrors());
    const { base, close } = await serve(app);
    try {
      const answers: [number, string | null][] = [];
      for (const path of ['/outer', '/inner', '/inherited', '/none']) {
        const res = await fetch(`${base}${path}`);
        const by =
          res.status === 418
            ? ((await res.json()) as { by: string }).by
            : res.headers.get('content-type');
        answers.push([res.status, by]);
      }
      expect(answers).toEqual([
        [418, 'outer'],
        [418, 'inner'],
        [418, 'outer'],
        [503, 'application/problem+json; charset=utf-8'],
      ]);
    } finally {
      await close();
    }
  });

  it('freshDb(req) throws a ConfigError naming the fix where freshgate() is not mounted; req.db is undefined there', async () => {
    const app = express();
    app.get('/off', (req, res) => {
      let error: unknown;
      try {
        freshDb(req);
      } catch (e) {
        error = e;
      }
      res.json({
        db: req.db === undefined,
        config: error instanceof ConfigError,
        message: String(error),
      });
    });
    const { base, close } = await serve(app);
    try {
      const body = (await (await fetch(`${base}/off`)).json()) as { message: string };
      expect(body).toMatchObject({ db: true, config: true });
      expect(body.message).toMatch(/app\.use\(freshgate\(gate\)\)/);
    } finally {
      await close();
    }
  });

  it('freshDb(req) names res.locals when an app replaced it after freshgate()', async () => {
    const app = express();
    app.use(freshgate(engine));
    app.use((_req, res, next) => {
      res.locals = {};
      next();
    });
    app.get('/replaced', (req, res) => {
      let error: unknown;
      try {
        freshDb(req);
      } catch (e) {
        error = e;
      }
      res.json({ message: String(error) });
    });
    const { base, close } = await serve(app);
    try {
      const body = (await (await fetch(`${base}/replaced`)).json()) as { message: string };
      expect(body.message).toMatch(/add to res\.locals, do not replace it/);
    } finally {
      await close();
    }
  });

  it('fails every request loudly, naming the fix, when the Freshgate was never started', async () => {
    const gate = await createFreshgate({
      primary: 'postgres://127.0.0.1:1/none',
      replicas: {},
      secret: 'express-unit-test-secret-long-enough!',
    });
    try {
      const app = express();
      app.use(freshgate(gate));
      app.get('/x', (_req, res) => res.json({}));
      app.use(
        (
          err: Error & { code?: string },
          _req: express.Request,
          res: express.Response,
          _next: unknown,
        ) => {
          res.status(500).json({ code: err.code, message: err.message });
        },
      );
      const { base, close } = await serve(app);
      try {
        const res = await fetch(`${base}/x`);
        expect(res.status).toBe(500);
        const body = (await res.json()) as { code: string; message: string };
        expect(body.code).toBe('ERR_FRESHGATE_NOT_STARTED');
        expect(body.message).toMatch(/await gate\.start\(\)/);
      } finally {
        await close();
      }
    } finally {
      await gate.close();
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
