import { request as httpRequest } from 'node:http';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import {
  type App,
  call,
  FRAMEWORKS,
  isDocumented503,
  poolUsage,
  SCHEMA,
  sleep,
  startApp,
  untilPoolsIdle,
} from './support.js';

const POOL_MAX = 2;
const QUEUE_TIMEOUT_MS = 300;
const STATEMENT_TIMEOUT_MS = 800;

describe('pool exhaustion, aborted clients, handler errors and statement timeouts', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  const apps = new Map<string, App>();

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    const pool = (url: string) => ({
      connectionString: url,
      max: POOL_MAX,
      connectionTimeoutMillis: QUEUE_TIMEOUT_MS,
    });
    freshgate = await freshgateFor(cluster, {
      primary: pool(cluster.primary.url),
      replicas: { r1: pool(cluster.replica('r1').url) },
      statementTimeout: STATEMENT_TIMEOUT_MS,
    });
    await untilHealthy(freshgate);
    for (const framework of FRAMEWORKS) apps.set(framework, await startApp(framework, freshgate));
  });

  afterAll(async () => {
    await Promise.all([...apps.values()].map((a) => a.close()));
    await freshgate?.close();
    await cluster?.stop();
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      const url = () => apps.get(framework)!.url;

      it('more concurrent requests than connections: bounded queueing, then 503 with Retry-After, never a hang', async () => {
        let maxWaiting = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            maxWaiting = Math.max(maxWaiting, freshgate.primary.waitingCount);
            await sleep(5);
          }
        })();
        const results = await Promise.all(
          Array.from({ length: 12 }, () => call(`${url()}/slow?s=0.5`, { deadlineMs: 5_000 })),
        );
        sampling = false;
        await sampler;
        const ok = results.filter((r) => r.status === 200);
        const rejected = results.filter(isDocumented503);
        // The fault is real: requests queued for a connection.
        expect(maxWaiting).toBeGreaterThan(0);
        expect(ok.length).toBeGreaterThanOrEqual(POOL_MAX);
        expect(rejected.length).toBeGreaterThan(0);
        expect(ok.length + rejected.length).toBe(results.length);
        // A rejected request waited about the queue timeout, not the slow statement.
        for (const r of rejected) expect(r.ms).toBeLessThan(QUEUE_TIMEOUT_MS + 1_000);
        expect(rejected[0]!.body).toMatchObject({ status: 503 });
        expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(3_000);
        expect(await untilPoolsIdle(freshgate)).toEqual(idle());
        console.info(
          `[pool exhaustion ${framework}] ${ok.length} × 200, ${rejected.length} × 503 ` +
            `(max ${Math.max(...rejected.map((r) => r.ms)).toFixed(0)} ms), ${maxWaiting} waiting at most`,
        );
      });

      it('client aborts (AbortController and destroyed sockets) leave no connection checked out', async () => {
        const aborted = Array.from({ length: 2 }, async () => {
          const controller = new AbortController();
          const pending = fetch(`${url()}/slow?s=0.4`, { signal: controller.signal });
          await sleep(100);
          controller.abort();
          await pending.catch(() => {});
        });
        const destroyed = Array.from(
          { length: 2 },
          () =>
            new Promise<void>((resolve) => {
              const req = httpRequest(`${url()}/slow-replica?s=0.4`);
              req.on('error', () => resolve());
              req.end();
              setTimeout(() => {
                req.destroy();
                resolve();
              }, 100);
            }),
        );
        await Promise.all([...aborted, ...destroyed]);
        // While the aborted statements still run, their connections are really in use.
        const during = poolUsage(freshgate);
        expect(during.primary!.busy + during.r1!.busy).toBeGreaterThan(0);
        expect(await untilPoolsIdle(freshgate)).toEqual(idle());
        expect((await call(`${url()}/strong/items/x`)).status).toBe(200);
      });

      it('handler errors and SQL errors are the application’s 500s and leave no connection checked out', async () => {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => call(`${url()}/${i % 2 ? 'boom' : 'bad-sql'}`)),
        );
        expect(results.map((r) => r.status)).toEqual(Array(10).fill(500));
        expect(results.map((r) => r.body)).toEqual(
          Array(10).fill({ error: 'internal', detail: expect.any(String) }),
        );
        expect(await untilPoolsIdle(freshgate)).toEqual(idle());
      });

      it('a statement timeout on a replica is a 503 with Retry-After; the replica stays in rotation', async () => {
        const result = await call(`${url()}/slow-replica?s=3`);
        expect(isDocumented503(result)).toBe(true);
        expect(result.body).toMatchObject({
          type: 'https://freshgate.dev/problems/err-freshgate-statement-timeout',
        });
        expect(result.ms).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 50);
        expect(result.ms).toBeLessThan(STATEMENT_TIMEOUT_MS + 1_500);
        expect(freshgate.topology.replica('r1')?.health).toBe('healthy');
        expect(await untilPoolsIdle(freshgate)).toEqual(idle());
        const next = await call(`${url()}/eventual/items/x`);
        expect(next.headers.get('x-freshness-route')).toBe('replica:r1');
      });
    });
  }

  function idle() {
    return Object.fromEntries(
      Object.entries(poolUsage(freshgate)).map(([name, u]) => [
        name,
        { busy: 0, waiting: 0, total: u.total },
      ]),
    );
  }
});
