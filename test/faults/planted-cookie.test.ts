import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import { type App, BATCH_WRITES, call, FRAMEWORKS, SCHEMA, startApp } from './support.js';

const APPLY_DELAY_MS = 800;
const ROUNDS = 20;

/** The `name=value` part of the `fg_fresh` Set-Cookie values of a response. */
function freshCookies(headers: Headers): string[] {
  return headers
    .getSetCookie()
    .filter((c) => c.startsWith('fg_fresh='))
    .map((c) => c.split(';')[0] as string);
}

describe('a planted older fg_fresh cookie, replicas lagging 800 ms (black box)', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  const apps: App[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    // Health thresholds above the lag: the lagging replica stays in rotation, so that only
    // freshness decides where each read goes.
    freshgate = await freshgateFor(cluster, {
      cookie: true,
      monitor: {
        health: { exitLag: 60_000, exitFor: 60_000, enterLag: 60_000, enterFor: 0 },
      },
    });
    await untilHealthy(freshgate);
    for (const framework of FRAMEWORKS) apps.push(await startApp(framework, freshgate));
    await cluster.replica('r1').setApplyDelay(APPLY_DELAY_MS);
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await freshgate?.close();
    await cluster?.stop();
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      const app = () => apps.find((a) => a.framework === framework) as App;

      it(`a read sending an older valid fg_fresh before the newest sees the write, ${ROUNDS} times out of ${ROUNDS}`, async () => {
        const key = `planted-${framework}`;
        const first = await call(`${app().url}/items/${key}`, { method: 'POST' });
        const older = freshCookies(first.headers)[0] as string;
        expect(older).toMatch(/^fg_fresh=[\w-]+\.[\w-]+\.[\w-]+$/);
        // The replica has replayed the older token: on its own it lets the replica serve.
        await cluster.waitForReplicas();

        let seen = 0;
        let missedWithOlderAlone = 0;
        for (let i = 0; i < ROUNDS; i++) {
          const write = await call(`${app().url}/items/${key}`, { method: 'POST' });
          expect(write.status).toBe(201);
          const { version } = write.body as { version: number };
          const [newest] = freshCookies(write.headers);
          // Browsers send the cookie with the longer Path first: the planted one comes first.
          const read = await call(`${app().url}/items/${key}`, {
            headers: { cookie: `${older}; theme=dark; ${newest}` },
          });
          expect(read.status).toBe(200);
          if ((read.body as { version: number }).version >= version) seen++;
          // Control: the older cookie alone reads the lagging replica.
          const control = await call(`${app().url}/items/${key}`, { headers: { cookie: older } });
          if ((control.body as { version: number }).version < version) missedWithOlderAlone++;
        }
        expect(seen).toBe(ROUNDS);
        // The lag is real: without the newest cookie the write is missed.
        expect(missedWithOlderAlone).toBeGreaterThan(0);
      });

      it('a response that issues several tokens carries exactly one fg_fresh cookie, the newest', async () => {
        const res = await call(`${app().url}/batch/batch-${framework}`, { method: 'POST' });
        expect(res.status).toBe(201);
        expect((res.body as { version: number }).version).toBeGreaterThanOrEqual(BATCH_WRITES);
        const cookies = freshCookies(res.headers);
        expect(cookies).toEqual([`fg_fresh=${res.headers.get('x-freshness-token')}`]);
        // The application's own cookie is kept.
        expect(res.headers.getSetCookie()).toContain('app_session=1; Path=/');
      });
    });
  }
});
