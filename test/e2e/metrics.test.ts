import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { type CasebookProcess, startCasebook } from './casebook-process.js';
import { documentedMetrics, exposedNames } from './metrics-doc.js';

const metrics = documentedMetrics();
const documented = new Set(metrics.flatMap((m) => m.prometheus));

// The casebook on each framework with the Redis pin store, and once with the memory one. It
// runs the probe, so every documented series of its pin store's configuration must show.
const CONFIGURATIONS = [
  { framework: 'express', store: 'redis' },
  { framework: 'fastify', store: 'redis' },
  { framework: 'fastify', store: 'memory' },
] as const;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ replicas: 2, redis: true });
});

afterAll(async () => {
  await cluster?.stop();
});

for (const { framework, store } of CONFIGURATIONS) {
  describe(`casebook /metrics on ${framework} with the ${store} pin store`, () => {
    let app: CasebookProcess;
    const other = store === 'redis' ? 'memory' : 'redis';
    const expected = metrics.filter((m) => m.requires !== other).flatMap((m) => m.prometheus);

    beforeAll(async () => {
      app = await startCasebook(cluster, {
        FRESHGATE_FRAMEWORK: framework,
        REDIS_URL: store === 'redis' ? cluster.redisUrl : '',
        CASEBOOK_LAB: '1',
        CASEBOOK_METRICS: '1',
      });
    });

    afterAll(async () => {
      await app?.stop();
    });

    async function call(
      method: string,
      path: string,
      headers: Record<string, string> = {},
      body?: unknown,
    ): Promise<Response> {
      const response = await fetch(`${app.url}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(response.status, `${method} ${path}`).toBeLessThan(300);
      return response;
    }

    async function scrape(): Promise<string> {
      const response = await fetch(`${app.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      return response.text();
    }

    it('lists every metric docs/metrics.md documents, after a short journey', async () => {
      const user = `metrics-${framework}`;
      const headers = { 'x-user': user };
      // A write, then reads under each of the casebook's contracts.
      const created = await call('POST', '/api/cases', headers, { title: 'Scraped' });
      const token = created.headers.get('x-freshness-token') as string;
      const { id } = (await created.json()) as { id: number };
      const withToken = { ...headers, 'x-freshness-token': token };
      await call('GET', `/api/cases/${id}`, withToken); // monotonic
      await call('GET', `/api/cases?owner=${user}`, withToken); // monotonic
      await call('GET', '/api/dashboard', withToken); // { maxLag: '5s', fallback: 'stale' }
      await call('GET', '/api/search?q=Scraped', withToken); // eventual
      // strong, several in a row: the adaptive budget measures the primary's latency from them.
      for (let i = 0; i < 8; i++) await call('GET', `/api/permissions/${user}`, withToken);
      // A tampered token: its signature no longer verifies, it is ignored and counted.
      const [head, payload, signature] = token.split('.') as [string, string, string];
      // The next-to-last character: all six of its bits are the signature's (the last one's
      // two low bits are padding, and a token with them set is malformed, not forged).
      const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
      await call('GET', `/api/cases/${id}`, {
        ...headers,
        'x-freshness-token': `${head}.${payload}.${flipped}`,
      });
      // A hint with nothing to say where the client's writes are: a barrier read.
      await call('GET', `/api/cases/${id}`, { 'x-read-after-write': 'true' });
      // A write no replica has replayed, read at once: a fallback to the primary.
      for (const replica of cluster.replicas) {
        await call('POST', `/api/lab/replicas/${replica.name}/pause`);
      }
      try {
        const unseen = await call('POST', '/api/cases', headers, { title: 'Unreplayed' });
        const { id: unseenId } = (await unseen.json()) as { id: number };
        const read = await call('GET', `/api/cases/${unseenId}`, {
          ...headers,
          'x-freshness-token': unseen.headers.get('x-freshness-token') as string,
        });
        expect(read.headers.get('x-freshness-route')).toBe('primary');
        // The list's chain waits for a replica first (200 ms, in vain here), then the primary.
        const list = await call('GET', `/api/cases?owner=${user}`, {
          ...headers,
          'x-freshness-token': unseen.headers.get('x-freshness-token') as string,
        });
        expect(list.headers.get('x-freshness-route')).toBe('primary');
      } finally {
        for (const replica of cluster.replicas) {
          await call('POST', `/api/lab/replicas/${replica.name}/resume`);
        }
      }

      // Observable instruments show at the next collection; the budget's measurements once
      // its 250 ms window has closed.
      let names = new Set<string>();
      const deadline = Date.now() + 10_000;
      do {
        names = exposedNames(await scrape());
        if (expected.every((name) => names.has(name))) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      } while (Date.now() < deadline);
      expect(expected.filter((name) => !names.has(name))).toEqual([]);
      // And nothing freshgate exports is missing from the reference.
      const undocumented = [...names].filter(
        (n) => n.startsWith('freshgate_') && !documented.has(n),
      );
      expect(undocumented).toEqual([]);
    });

    it('labels series with the documented attributes', async () => {
      const text = await scrape();
      expect(text).toMatch(/^freshgate_token_rejections_total\{freshgate_reason="signature",/m);
      expect(text).toMatch(
        /^freshgate_routes_total\{freshgate_contract="strong",freshgate_route="primary",/m,
      );
      expect(text).toMatch(/^freshgate_replica_lag\{freshgate_node="r1",/m);
      expect(text).toMatch(
        /^freshgate_fallbacks_total\{freshgate_reason="[a-z-]+",freshgate_fallback="primary",/m,
      );
      expect(text).toMatch(/^freshgate_barriers_total\{freshgate_reason="hint-no-lsn",/m);
    });
  });
}
