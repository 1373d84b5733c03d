import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../harness/index.js';
import { type CasebookProcess, startCasebook } from './casebook-process.js';

const FRAMEWORKS = ['express', 'fastify'] as const;

/** One point of `GET /api/freshgate/lag`. */
interface LagPoint {
  t: number;
  lagMs: number | null;
  health: string;
  paused: boolean | null;
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

function client(base: string) {
  return async function call(
    method: string,
    path: string,
    options: {
      body?: unknown;
      raw?: string;
      user?: string;
      token?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.user) headers['x-user'] = options.user;
    if (options.token) headers['x-freshness-token'] = options.token;
    let body: string | undefined;
    if (options.raw !== undefined || options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = options.raw ?? JSON.stringify(options.body);
    }
    const response = await fetch(`${base}${path}`, { method, headers, body });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: text ? JSON.parse(text) : {},
    };
  };
}

function expectProblem(reply: Reply, status: number): void {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(reply.body).toMatchObject({ status, title: expect.any(String) });
}

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ replicas: 2 });
});

afterAll(async () => {
  await cluster?.stop();
});

for (const framework of FRAMEWORKS) {
  describe(`casebook on ${framework}`, () => {
    let app: CasebookProcess;
    let call: ReturnType<typeof client>;

    beforeAll(async () => {
      app = await startCasebook(cluster, { FRESHGATE_FRAMEWORK: framework, CASEBOOK_LAB: '1' });
      call = client(app.url);
    });

    afterAll(async () => {
      await app?.stop();
    });

    it('creates, reads, lists, updates and searches cases', async () => {
      const user = `officer-${framework}`;
      const created = await call('POST', '/api/cases', {
        user,
        body: { title: `Stolen bike ${framework}` },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        title: `Stolen bike ${framework}`,
        status: 'open',
        owner: user,
        version: 1,
      });
      expect(created.headers.get('x-freshness-route')).toBe('primary');
      const token = created.headers.get('x-freshness-token');
      expect(token).toMatch(/^ey/);
      expect(created.headers.get('set-cookie')).toMatch(/^fg_fresh=ey.*HttpOnly; SameSite=Lax/);
      const id = created.body.id as number;

      const read = await call('GET', `/api/cases/${id}`, { token });
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ id, status: 'open', version: 1 });
      expect(read.headers.get('x-freshness-route')).toMatch(/^(primary|replica:r[12])$/);

      const updated = await call('PATCH', `/api/cases/${id}`, {
        user,
        token,
        body: { status: 'in_review', version: 1 },
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id, status: 'in_review', version: 2 });
      const token2 = updated.headers.get('x-freshness-token');

      const stale = await call('PATCH', `/api/cases/${id}`, {
        user,
        token: token2,
        body: { status: 'closed', version: 1 },
      });
      expectProblem(stale, 409);
      expectProblem(
        await call('PATCH', `/api/cases/${id}`, { user, body: { status: 'lost', version: 2 } }),
        422,
      );

      const again = await call('GET', `/api/cases/${id}`, { token: token2 });
      expect(again.body).toMatchObject({ status: 'in_review', version: 2 });

      const second = await call('POST', '/api/cases', {
        user,
        token: token2,
        body: { title: 'Second case' },
      });
      const token3 = second.headers.get('x-freshness-token');
      const list = await call('GET', `/api/cases?owner=${user}`, { token: token3 });
      const items = list.body.items as { id: number; owner: string }[];
      expect(items.length).toBeGreaterThanOrEqual(2);
      expect(items.every((c) => c.owner === user)).toBe(true);
      expect(items.map((c) => c.id)).toEqual([...items.map((c) => c.id)].sort((a, b) => b - a));

      await cluster.waitForReplicas();
      const search = await call('GET', `/api/search?q=${encodeURIComponent(`bike ${framework}`)}`);
      expect(search.status).toBe(200);
      expect((search.body.items as { id: number }[]).map((c) => c.id)).toContain(id);
      expect(search.headers.get('x-freshness-route')).toMatch(/^replica:/);

      const dashboard = await call('GET', '/api/dashboard');
      expect(dashboard.status).toBe(200);
      expect(dashboard.body).toMatchObject({
        open: expect.any(Number),
        inReview: expect.any(Number),
        closed: expect.any(Number),
      });
      expect(dashboard.body.freshness).toMatchObject({
        route: expect.stringMatching(/^(primary|replica:r[12])$/),
      });
      expect(dashboard.headers.get('x-freshness-lag-ms')).toMatch(/^\d+$/);
    });

    it('answers bad input with problem+json, never a 500', async () => {
      expectProblem(await call('GET', '/api/cases/999999'), 404);
      expectProblem(await call('GET', '/api/cases/not-a-number'), 404);
      expectProblem(await call('POST', '/api/cases', { body: { title: 'x' } }), 401);
      expectProblem(await call('POST', '/api/cases', { user: 'ada', raw: '{"title":' }), 400);
      expectProblem(await call('POST', '/api/cases', { user: 'ada', body: { title: 42 } }), 400);
      expectProblem(await call('POST', '/api/cases', { user: 'ada', body: {} }), 400);
      expectProblem(await call('POST', '/api/cases', { user: 'ada', body: ['title'] }), 400);
      expectProblem(
        await call('POST', '/api/cases', { user: 'ada', body: { title: 'x'.repeat(20_000) } }),
        413,
      );
      expectProblem(
        await call('PATCH', '/api/cases/1', {
          user: 'ada',
          body: { status: 'open', version: 'one' },
        }),
        400,
      );
      expectProblem(
        await call('POST', '/api/cases', { user: 'not a valid user!', body: { title: 'x' } }),
        400,
      );
      expectProblem(await call('GET', '/api/search?q=a&q=b'), 400);
      expectProblem(await call('GET', '/api/nope'), 404);
      // Hostile freshness input is ignored, not an error.
      const garbage = await call('GET', '/api/cases', {
        token: 'not-a-token',
        headers: { 'x-read-after-write': 'maybe' },
      });
      expect(garbage.status).toBe(200);
    });

    it('sees a revocation on the very next permission check, and refuses the revoked user', async () => {
      const user = `auditor-${framework}`;
      expect((await call('GET', `/api/permissions/${user}`)).body).toEqual({ user, canEdit: true });
      const strong = await call('GET', `/api/permissions/${user}`);
      expect(strong.headers.get('x-freshness-route')).toBe('primary');
      // With every replica paused, a check that read a replica would miss the revocation.
      await Promise.all(cluster.replicas.map((r) => r.pause()));
      try {
        expect((await call('POST', `/api/permissions/${user}/revoke`)).status).toBe(200);
        expect((await call('GET', `/api/permissions/${user}`)).body).toEqual({
          user,
          canEdit: false,
        });
        expectProblem(await call('POST', '/api/cases', { user, body: { title: 'x' } }), 403);
      } finally {
        await Promise.all(cluster.replicas.map((r) => r.resume()));
      }
    });

    it('reports the monitor and lets lab mode pause, delay and resume replicas', async () => {
      const status = await call('GET', '/api/freshgate/status');
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({
        primary: { name: 'primary', health: 'healthy' },
        lab: true,
        framework,
      });
      const replicas = status.body.replicas as {
        name: string;
        replayLsn: string;
        lagMs: number;
        health: string;
        circuit: string;
      }[];
      expect(replicas.map((r) => r.name)).toEqual(['r1', 'r2']);
      expect(replicas[0]).toMatchObject({
        replayLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
        circuit: 'closed',
      });
      expect(status.body.counters).toMatchObject({
        routes: expect.any(Object),
        fallbacks: expect.any(Object),
        degraded: expect.any(Object),
      });

      // Lab answers are read back from the replica, not echoed.
      expect((await call('POST', '/api/lab/replicas/r1/pause')).body).toEqual({
        replica: 'r1',
        replay: 'paused',
        delayMs: 0,
      });
      expect(await cluster.replica('r1').pauseState()).toBe('paused');
      expect(
        (await call('POST', '/api/lab/replicas/r2/delay', { body: { ms: 1_000 } })).body,
      ).toEqual({ replica: 'r2', replay: 'running', delayMs: 1_000 });
      expect((await call('GET', '/api/lab/replicas')).body).toEqual({
        replicas: [
          { replica: 'r1', replay: 'paused', delayMs: 0 },
          { replica: 'r2', replay: 'running', delayMs: 1_000 },
        ],
      });
      try {
        // A write now is on neither replica: its follow-up read must come from the primary.
        const user = `lab-${framework}`;
        const created = await call('POST', '/api/cases', { user, body: { title: 'lagged' } });
        const token = created.headers.get('x-freshness-token');
        const read = await call('GET', `/api/cases/${created.body.id}`, { token });
        expect(read.status).toBe(200);
        expect(read.headers.get('x-freshness-route')).toBe('primary');
        await waitFor('r1 to look lagged', async () => {
          const s = await call('GET', '/api/freshgate/status');
          const r1 = (s.body.replicas as { name: string; lagMs: number }[]).find(
            (r) => r.name === 'r1',
          )!;
          return r1.lagMs > 0 ? true : undefined;
        });
        // The server records the monitor's lag and the replica's own pause state, so that a
        // dashboard opened later shows the episode.
        await waitFor('the lag history to show r1 paused and lagging', async () => {
          const history = await call('GET', '/api/freshgate/lag');
          const points = (history.body.replicas as Record<string, LagPoint[]>).r1 ?? [];
          return points.some((p) => p.paused === true && (p.lagMs ?? 0) > 0) ? true : undefined;
        });
        // Per route: the read of the new case went to the primary, and the dashboard says why.
        const counters = (await call('GET', '/api/freshgate/status')).body.counters as {
          byRoute: Record<string, { contract: string; primary: number; reasons: object }>;
        };
        const caseReads = counters.byRoute['GET /api/cases/:id'];
        expect(caseReads).toMatchObject({ contract: 'monotonic' });
        expect(caseReads!.primary).toBeGreaterThan(0);
        expect(Object.keys(caseReads!.reasons).length).toBeGreaterThan(0);
      } finally {
        expect((await call('POST', '/api/lab/replicas/r1/resume')).body).toEqual({
          replica: 'r1',
          replay: 'running',
          delayMs: 0,
        });
        await call('POST', '/api/lab/replicas/r2/delay', { body: { ms: 0 } });
      }
      expectProblem(await call('POST', '/api/lab/replicas/r9/pause'), 404);
      expectProblem(await call('POST', '/api/lab/replicas/r1/delay', { body: { ms: -5 } }), 400);
    });
  });
}

describe('casebook without lab mode', () => {
  it('answers 404 on lab routes', async () => {
    const app = await startCasebook(cluster, {
      FRESHGATE_FRAMEWORK: 'fastify',
      CASEBOOK_LAB: undefined,
    });
    try {
      const reply = await client(app.url)('POST', '/api/lab/replicas/r1/pause');
      expectProblem(reply, 404);
      expect(await cluster.replica('r1').pauseState()).toBe('not paused');
    } finally {
      await app.stop();
    }
  });
});
