import { randomUUID } from 'node:crypto';
import { ConfigError, createTokenCodec, formatLsn, memoryPinStore } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { freshgateFor, TEST_SECRET, untilHealthy } from '../integration/support.js';
import {
  buildApp,
  CONTRACTS,
  type ConformanceApp,
  FRAMEWORKS,
  type Framework,
  registerTypo,
} from './apps.js';

const JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/;
const REPLICA = /^replica:r[12]$/;

interface Context {
  framework: Framework;
  cluster: Cluster;
  engine: Freshgate;
  app: ConformanceApp;
  http: ReturnType<typeof supertest>;
  /** The same app over an engine with `strict: true`. */
  strict: ReturnType<typeof supertest>;
}

const newId = () => randomUUID();

async function paused<T>(cluster: Cluster, fn: () => Promise<T>): Promise<T> {
  await Promise.all(cluster.replicas.map((r) => r.pause()));
  try {
    return await fn();
  } finally {
    await Promise.all(cluster.replicas.map((r) => r.resume()));
    await cluster.waitForReplicas();
  }
}

function connectionsInUse(engine: Freshgate): number {
  return Object.values(engine.status().pools).reduce((n, p) => n + p.total - p.idle, 0);
}

function exposed(header: string | undefined): string[] {
  return (header ?? '').split(',').map((h) => h.trim().toLowerCase());
}

/** One list of scenarios; every one runs unchanged against each framework. */
const SCENARIOS: [string, (t: Context) => Promise<void>][] = [
  [
    'write → X-Freshness-Token → a read with the token is served by a caught-up replica or the primary, never stale',
    async ({ http, cluster }) => {
      const id = newId();
      const token = await paused(cluster, async () => {
        const write = await http.post('/notes').send({ id, body: 'hello' }).expect(201);
        expect(write.headers['x-freshness-token']).toMatch(JWS);
        expect(write.headers['x-freshness-route']).toBe('primary');
        // Control: without the token a lagging replica serves the read and misses the write.
        const blind = await http.get(`/eventual/${id}`).expect(404);
        expect(blind.headers['x-freshness-route']).toMatch(REPLICA);

        const read = await http
          .get(`/notes/${id}`)
          .set('X-Freshness-Token', String(write.headers['x-freshness-token']))
          .expect(200, { body: 'hello' });
        expect(read.headers['x-freshness-route']).toBe('primary');
        return write.headers['x-freshness-token'] as string;
      });
      const later = await http
        .get(`/notes/${id}`)
        .set('X-Freshness-Token', token)
        .expect(200, { body: 'hello' });
      expect(later.headers['x-freshness-route']).toMatch(REPLICA);
    },
  ],
  [
    'tokens on writes and on monotonic/causal reads only; X-Freshness-Route on every routed response',
    async ({ http, cluster }) => {
      const id = newId();
      await http.post('/notes').send({ id, body: 'x' }).expect(201);
      await cluster.waitForReplicas();
      const feed = await http.get(`/feed/${id}`).expect(200);
      expect(feed.headers['x-freshness-token']).toMatch(JWS);
      expect(feed.headers['x-freshness-route']).toMatch(/^(primary|replica:r[12])$/);
      for (const path of [`/notes/${id}`, `/eventual/${id}`]) {
        const read = await http.get(path).expect(200);
        expect(read.headers['x-freshness-token']).toBeUndefined();
        expect(read.headers['x-freshness-route']).toMatch(REPLICA);
      }
    },
  ],
  [
    'cookie mode: fg_fresh is HttpOnly, SameSite=Lax, Max-Age = token lifetime, Secure on https; app cookies kept; token accepted from the cookie',
    async ({ http, cluster }) => {
      const id = newId();
      await paused(cluster, async () => {
        const write = await http.post('/notes').send({ id, body: 'c' }).expect(201);
        const cookies = write.headers['set-cookie'] as unknown as string[];
        expect(cookies).toContain('app_session=1; Path=/');
        const cookie = cookies.find((c) => c.startsWith('fg_fresh='));
        expect(cookie).toMatch(
          /^fg_fresh=[\w-]+\.[\w-]+\.[\w-]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/,
        );
        expect(cookie?.slice('fg_fresh='.length).split(';')[0]).toBe(
          write.headers['x-freshness-token'],
        );
        const read = await http
          .get(`/notes/${id}`)
          .set('Cookie', `other=1; ${cookie?.split(';')[0]}`)
          .expect(200, { body: 'c' });
        expect(read.headers['x-freshness-route']).toBe('primary');
      });
      const https = await http
        .post('/notes')
        .set('X-Forwarded-Proto', 'https')
        .send({ id: newId(), body: 's' })
        .expect(201);
      // On https the name is __Host- prefixed: a sibling subdomain cannot set it.
      const secure = (https.headers['set-cookie'] as unknown as string[]).find((c) =>
        c.startsWith('__Host-fg_fresh='),
      );
      expect(secure).toMatch(/; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    },
  ],
  [
    'X-Read-After-Write: true tightens eventual to the primary when no LSN is known, and loosens nothing',
    async ({ http, cluster }) => {
      const id = newId();
      await paused(cluster, async () => {
        await http.post('/notes').send({ id, body: 'raw' }).expect(201);
        const hinted = await http
          .get(`/eventual/${id}`)
          .set('X-Read-After-Write', 'true')
          .expect(200, { body: 'raw' });
        expect(hinted.headers['x-freshness-route']).toBe('primary');
        const plain = await http.get(`/eventual/${id}`).expect(404);
        expect(plain.headers['x-freshness-route']).toMatch(REPLICA);
      });
      for (const hint of ['false', '0', 'true']) {
        const strong = await http.get(`/strong/${id}`).set('X-Read-After-Write', hint).expect(200);
        expect(strong.headers['x-freshness-route']).toBe('primary');
      }
    },
  ],
  [
    'route contracts: strong on the primary, eventual/read-your-writes on replicas, bounded reads report their lag and go stale only when allowed',
    async ({ http, cluster }) => {
      const id = newId();
      await http.post('/notes').send({ id, body: 'r' }).expect(201);
      await cluster.waitForReplicas();
      expect((await http.get(`/strong/${id}`).expect(200)).headers['x-freshness-route']).toBe(
        'primary',
      );
      expect((await http.get(`/eventual/${id}`).expect(200)).headers['x-freshness-route']).toMatch(
        REPLICA,
      );
      const bounded = await http.get('/bounded').expect(200);
      expect(bounded.headers['x-freshness-route']).toMatch(REPLICA);
      expect(Number(bounded.headers['x-freshness-lag-ms'])).toBeLessThan(500);
      await paused(cluster, async () => {
        await cluster.write('INSERT INTO notes VALUES ($1, $2)', [newId(), 'lag']);
        await new Promise((r) => setTimeout(r, 1_200));
        const stale = await http.get('/bounded').expect(200);
        expect(stale.headers['x-freshness-route']).toMatch(REPLICA);
        expect(Number(stale.headers['x-freshness-lag-ms'])).toBeGreaterThan(500);
      });
    },
  ],
  [
    'session key: the session reads its own write through its pin without a token; another session does not',
    async ({ http, cluster, framework }) => {
      const id = newId();
      const alice = `alice-${framework}-${id}`;
      await paused(cluster, async () => {
        await http.post('/notes').set('X-User', alice).send({ id, body: 'pin' }).expect(201);
        const own = await http
          .get(`/notes/${id}`)
          .set('X-User', alice)
          .expect(200, { body: 'pin' });
        expect(own.headers['x-freshness-route']).toBe('primary');
        const other = await http.get(`/notes/${id}`).set('X-User', `bob-${id}`).expect(404);
        expect(other.headers['x-freshness-route']).toMatch(REPLICA);
      });
    },
  ],
  [
    'bindSession: a sign-up binds the new user as session key, so a token-less, cookie-less client (Authorization only) reads its new account',
    async ({ http, cluster, framework, engine }) => {
      const id = newId();
      const user = `new-${framework}-${id}`;
      await paused(cluster, async () => {
        // The sign-up request carries no session key at all; the response's token and cookie
        // are dropped, as a client that only keeps its bearer credential would.
        const signup = await http.post('/signup').send({ id, user }).expect(201);
        const { lsn, token } = signup.body as { lsn: string; token: string };
        // The request's own commit LSN, readable without decoding the token.
        const codec = await createTokenCodec({ secret: TEST_SECRET });
        const claims = await codec.verify(token);
        expect(claims.ok && formatLsn(claims.lsn)).toBe(lsn);

        const own = await http
          .get(`/notes/${id}`)
          .set('Authorization', `Bearer ${user}`)
          .expect(200, { body: `account of ${user}` });
        expect(own.headers['x-freshness-route']).toBe('primary');
        // Control: the replicas lag, so another session misses the account.
        const other = await http
          .get(`/notes/${id}`)
          .set('Authorization', `Bearer someone-else-${id}`)
          .expect(404);
        expect(other.headers['x-freshness-route']).toMatch(REPLICA);
      });
      // status() counts reads per contract, route and reason.
      const reads = engine.status().reads;
      const count = (route: RegExp) =>
        reads
          .filter((r) => r.contract === 'read-your-writes' && route.test(r.route))
          .reduce((n, r) => n + r.reads, 0);
      expect(count(/^primary$/)).toBeGreaterThanOrEqual(1);
      expect(count(REPLICA)).toBeGreaterThanOrEqual(1);
      expect(reads.every((r) => typeof r.reason === 'string' && r.reads > 0)).toBe(true);
    },
  ],
  [
    '503 application/problem+json with Retry-After when no replica is fresh and the route allows no fallback',
    async ({ http, cluster }) => {
      const id = newId();
      await paused(cluster, async () => {
        const write = await http.post('/notes').send({ id, body: 'g' }).expect(201);
        const res = await http
          .get(`/guarded/${id}`)
          .set('X-Freshness-Token', String(write.headers['x-freshness-token']))
          .expect(503);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(JSON.parse(res.text)).toMatchObject({
          type: 'https://freshgate.dev/problems/freshness-unavailable',
          status: 503,
          title: 'Freshness unavailable',
        });
      });
    },
  ],
  [
    'strict mode: an invalid token is 400 problem+json; otherwise it is ignored, and no client input yields a 500',
    async ({ http, strict, engine }) => {
      const cid = engine.topology.primary.clusterId as string;
      const own = (await engine.engine.codec.sign({ lsn: 1n, cid })).token;
      const kid = JSON.parse(Buffer.from(own.split('.')[0] as string, 'base64url').toString()).kid;
      const other = await createTokenCodec({ secret: 'another-secret-of-at-least-32-bytes!!' });
      const unknownKid = (await other.sign({ lsn: 1n, cid })).token;
      // The engine's kid over another secret: a forgery.
      const forger = await createTokenCodec({
        keys: [{ kid, secret: 'another-secret-of-at-least-32-bytes!!' }],
      });
      const forged = (await forger.sign({ lsn: 1n, cid })).token;
      for (const [token, reason] of [
        ['garbage', 'malformed'],
        [forged, 'signature'],
      ]) {
        const res = await strict
          .get(`/notes/${newId()}`)
          .set('X-Freshness-Token', token as string)
          .expect(400);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.text)).toMatchObject({ status: 400, reason });
      }
      await strict.get(`/notes/${newId()}`).expect(404);
      // Signed with a key no longer listed (after a rotation): the client did nothing wrong.
      await strict.get(`/notes/${newId()}`).set('X-Freshness-Token', unknownKid).expect(404);
      const hostile: [string, string][] = [
        ['X-Freshness-Token', 'garbage'],
        ['X-Freshness-Token', forged],
        ['X-Freshness-Token', 'a'.repeat(5_000)],
        ['Cookie', 'fg_fresh="; fg_fresh==;;; =x'],
        ['X-Read-After-Write', 'maybe'.repeat(100)],
      ];
      for (const [name, value] of hostile) {
        await http.get(`/notes/${newId()}`).set(name, value).expect(404);
      }
    },
  ],
  [
    'an older valid fg_fresh cookie sent before the newest (planted from a sibling subdomain) does not hide a write',
    async ({ http, cluster }) => {
      const first = await http.post('/notes').send({ id: newId(), body: 'old' }).expect(201);
      const cookieOf = (res: { headers: Record<string, unknown> }) =>
        (res.headers['set-cookie'] as unknown as string[])
          .find((c) => c.startsWith('fg_fresh='))
          ?.split(';')[0] as string;
      const older = cookieOf(first);
      await cluster.waitForReplicas();
      const id = newId();
      await paused(cluster, async () => {
        const write = await http.post('/notes').send({ id, body: 'new' }).expect(201);
        // Browsers send the cookie with the longer Path first: the planted one comes first.
        const read = await http
          .get(`/notes/${id}`)
          .set('Cookie', `${older}; app_session=1; ${cookieOf(write)}`)
          .expect(200, { body: 'new' });
        expect(read.headers['x-freshness-route']).toBe('primary');
        // Control: the older cookie alone lets a lagging replica answer.
        const blind = await http.get(`/notes/${id}`).set('Cookie', older).expect(404);
        expect(blind.headers['x-freshness-route']).toMatch(REPLICA);
      });
    },
  ],
  [
    'a response that issues several tokens carries exactly one fg_fresh cookie, the newest, and keeps the app cookie',
    async ({ http }) => {
      const ids = [newId(), newId(), newId(), newId()];
      const res = await http.post('/notes-batch').send({ ids }).expect(201);
      const cookies = res.headers['set-cookie'] as unknown as string[];
      expect(cookies).toContain('app_session=1; Path=/');
      const fresh = cookies.filter((c) => c.startsWith('fg_fresh='));
      expect(fresh).toHaveLength(1);
      expect(fresh[0]?.slice('fg_fresh='.length).split(';')[0]).toBe(
        res.headers['x-freshness-token'],
      );
      expect(cookies).toHaveLength(2);
    },
  ],
  [
    'strict mode: a rejected cookie is cleared in the 400; foreign-cluster and unknown-kid cookies are ignored and cleared',
    async ({ strict, engine }) => {
      const cleared = (res: { headers: Record<string, unknown> }) =>
        ((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).filter((c) =>
          c.startsWith('fg_fresh=;'),
        );
      const bad = await strict
        .get(`/notes/${newId()}`)
        .set('Cookie', 'fg_fresh=garbage')
        .expect(400);
      expect(cleared(bad)).toEqual(['fg_fresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax']);
      const other = await createTokenCodec({ secret: 'another-secret-of-at-least-32-bytes!!' });
      const foreign = (await engine.engine.codec.sign({ lsn: 1n, cid: 'another/1' })).token;
      const unknownKid = (await other.sign({ lsn: 1n, cid: 'x' })).token;
      for (const token of [foreign, unknownKid]) {
        const res = await strict
          .get(`/notes/${newId()}`)
          .set('Cookie', `fg_fresh=${token}`)
          .expect(404);
        expect(cleared(res)).toHaveLength(1);
      }
    },
  ],
  [
    "CORS: token and route headers are exposed to cross-origin code, next to the app's own exposed headers",
    async ({ http }) => {
      const res = await http
        .post('/notes')
        .set('Origin', 'https://app.example')
        .send({ id: newId(), body: 'cors' })
        .expect(201);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      const list = exposed(res.headers['access-control-expose-headers']);
      expect(list).toEqual(
        expect.arrayContaining(['x-request-id', 'x-freshness-token', 'x-freshness-route']),
      );
      expect(new Set(list).size).toBe(list.length);
    },
  ],
  [
    'connections are released after aborted requests (pool idle count returns to baseline)',
    async ({ http, engine }) => {
      const baseline = connectionsInUse(engine);
      await expect(http.get('/slow').timeout(150)).rejects.toThrow(/timeout/i);
      await expect(http.post('/slow-write').send({ id: newId() }).timeout(150)).rejects.toThrow(
        /timeout/i,
      );
      // The handlers' statements are still running: the check below can fail.
      expect(connectionsInUse(engine)).toBeGreaterThan(baseline);
      await expect.poll(() => connectionsInUse(engine), { timeout: 5_000 }).toBe(baseline);
      await http.get('/bounded').expect(200);
    },
  ],
  [
    'currentDb() in the handler is the request data source (its route headers are set)',
    async ({ http }) => {
      const id = newId();
      const write = await http.post('/notes').send({ id, body: 'ctx' }).expect(201);
      const res = await http
        .get(`/feed/${id}`)
        .set('X-Freshness-Token', String(write.headers['x-freshness-token']))
        .expect(200, { body: 'ctx' });
      expect(res.headers['x-freshness-route']).toMatch(/^(primary|replica:r[12])$/);
    },
  ],
  [
    'a route that declares an unknown contract fails at registration, with did-you-mean',
    async ({ framework, engine }) => {
      const error = await registerTypo(framework, engine).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/Did you mean "monotonic"/);
    },
  ],
  [
    'the route table lists every route with its contract and fallback, as JSON and Markdown',
    async ({ app }) => {
      const table = app.routeTable();
      const row = (method: string, path: string, contract: string, fallback: string[]) => ({
        method,
        path,
        contract,
        fallback,
      });
      expect(
        table.routes.map(({ method, path, contract, fallback }) => ({
          method,
          path,
          contract,
          fallback,
        })),
      ).toEqual([
        row('POST', '/notes', 'read-your-writes', ['primary']),
        row('POST', '/notes-batch', 'read-your-writes', ['primary']),
        row('GET', '/notes/:id', 'read-your-writes', ['primary']),
        row('GET', '/feed/:id', CONTRACTS.feed, ['primary']),
        row('GET', '/eventual/:id', 'eventual', ['primary']),
        row('GET', '/strong/:id', 'strong', []),
        row('GET', '/bounded', 'maxLag=500ms', ['stale']),
        row('GET', '/guarded/:id', 'read-your-writes', ['error']),
        row('GET', '/slow', 'eventual', ['primary']),
        row('POST', '/slow-write', 'read-your-writes', ['primary']),
        row('GET', '/forward', 'read-your-writes', ['primary']),
        row('POST', '/signup', 'read-your-writes', ['primary']),
      ]);
      expect(table.markdown).toContain('| GET | `/bounded` | maxLag=500ms | stale | — |');
      expect(table.markdown).toContain('| GET | `/strong/:id` | strong | — | — |');
    },
  ],
];

describe('conformance: one engine, the same scenarios over Express and Fastify', () => {
  let cluster: Cluster;
  let engine: Freshgate;
  let strictEngine: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    // Replicas are paused for seconds at a time: health thresholds high enough that a paused
    // replica stays in rotation, so that freshness (not health) decides every route.
    const monitor = {
      health: { exitLag: 60_000, exitFor: 60_000, enterLag: 60_000, enterFor: 0 },
    };
    engine = await freshgateFor(cluster, { pinStore: memoryPinStore(), cookie: true, monitor });
    strictEngine = await freshgateFor(cluster, { strict: true, cookie: true, monitor });
    await untilHealthy(engine);
    await untilHealthy(strictEngine);
  });

  afterAll(async () => {
    await engine?.close();
    await strictEngine?.close();
    await cluster?.stop();
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      const t = { framework } as Context;
      const apps: ConformanceApp[] = [];
      beforeAll(async () => {
        t.cluster = cluster;
        t.engine = engine;
        t.app = await buildApp(framework, engine);
        const strictApp = await buildApp(framework, strictEngine);
        apps.push(t.app, strictApp);
        t.http = supertest(t.app.target);
        t.strict = supertest(strictApp.target);
      });
      afterAll(async () => {
        await Promise.all(apps.map((a) => a.close()));
      });

      for (const [name, run] of SCENARIOS) it(name, () => run(t));
    });
  }
});
