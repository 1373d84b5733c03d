import { randomUUID } from 'node:crypto';
import { memoryPinStore } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';
import { FRAMEWORKS, type Notes, type OrmApp, ormApp } from './apps.js';
import { drizzleNotes } from './recipes/drizzle.js';
import { kyselyNotes } from './recipes/kysely.js';
import { typeormNotes } from './recipes/typeorm.js';

const APPLY_DELAY_MS = 300;
/** The journey's lag: every replica applies commits this late. */
const JOURNEY_DELAY_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Every recipe runs the same suite, on both frameworks (kysely-style: one suite, many dialects).
const ORMS: Record<string, (gate: Freshgate) => Promise<Notes & { close?(): Promise<void> }>> = {
  drizzle: async (gate) => drizzleNotes(gate),
  kysely: async (gate) => kyselyNotes(gate),
  typeorm: async (gate) => {
    const notes = await typeormNotes(gate);
    return { ...notes, close: () => notes.dataSource.destroy() };
  },
};

const token = (res: request.Response) => res.headers['x-freshness-token'] as string | undefined;
const route = (res: request.Response) => res.headers['x-freshness-route'] as string | undefined;

describe('ORM recipes over the routed pool, on real replicas with lag', () => {
  let cluster: Cluster;
  let gate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL)');
    await cluster.waitForReplicas();
    gate = await freshgateFor(cluster, { pinStore: memoryPinStore() });
    await untilHealthy(gate);
  });

  afterAll(async () => {
    await gate?.close();
    await cluster?.stop();
  });

  /** No connection stays checked out of any freshgate pool once the requests are answered. */
  async function expectNoCheckedOutConnections() {
    for (let i = 0; ; i++) {
      const busy = Object.entries(gate.status().pools).filter(([, p]) => p.total - p.idle > 0);
      if (busy.length === 0) return;
      if (i > 50) expect(busy).toEqual([]);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  for (const [orm, build] of Object.entries(ORMS)) {
    for (const framework of FRAMEWORKS) {
      describe(`${orm} on ${framework}`, () => {
        let app: OrmApp;
        let notes: Awaited<ReturnType<typeof build>>;

        beforeAll(async () => {
          notes = await build(gate);
          app = await ormApp(framework, gate, notes);
        });
        afterAll(async () => {
          await app?.close();
          await notes?.close?.();
        });

        it('a write returns a token; a read with it sees the write while replicas lag, then reads a caught-up replica', async () => {
          await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
          try {
            const id = randomUUID();
            const write = await request(app.target).post('/notes').send({ id, body: 'hello' });
            expect(write.status).toBe(201);
            expect(route(write)).toBe('primary');
            const issued = token(write);
            expect(issued).toMatch(/^ey/);

            const read = await request(app.target)
              .get(`/notes/${id}`)
              .set('X-Freshness-Token', issued!);
            expect(read.status).toBe(200);
            expect(read.body).toEqual({ id, body: 'hello' });
            // Either the primary or a replica that has replayed the write (a wait fallback).
            expect(route(read)).toMatch(/^(primary|replica:r[12])$/);

            await cluster.waitForReplicas();
            await untilHealthy(gate);
            const later = await request(app.target)
              .get(`/notes/${id}`)
              .set('X-Freshness-Token', issued!);
            expect(later.body).toEqual({ id, body: 'hello' });
            expect(route(later)).toMatch(/^replica:r[12]$/);
          } finally {
            await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(0)));
          }
        });

        it('pins a session-key-only client: its next read sees its write without any token', async () => {
          await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
          try {
            const user = `u-${randomUUID()}`;
            const id = randomUUID();
            await request(app.target)
              .post('/notes')
              .set('X-User', user)
              .send({ id, body: 'pinned' })
              .expect(201);
            const read = await request(app.target).get(`/notes/${id}`).set('X-User', user);
            expect(read.body).toEqual({ id, body: 'pinned' });
          } finally {
            await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(0)));
          }
        });

        it('keeps a monotonic route from going backwards across replicas of different lag', async () => {
          await cluster.replicas[1]!.setApplyDelay(APPLY_DELAY_MS);
          try {
            const id = randomUUID();
            const write = await request(app.target).post('/notes').send({ id, body: 'feed' });
            let carried = token(write)!;
            for (let i = 0; i < 6; i++) {
              const read = await request(app.target)
                .get(`/feed/${id}`)
                .set('X-Freshness-Token', carried);
              // Once seen, never unseen: every read of the feed has the note.
              expect(read.body).toEqual({ id, body: 'feed' });
              carried = token(read) ?? carried;
            }
          } finally {
            await cluster.replicas[1]!.setApplyDelay(0);
          }
        });

        it('runs an interactive transaction on the primary: it reads its own uncommitted write, and COMMIT issues a token', async () => {
          const id = randomUUID();
          const res = await request(app.target).post('/tx').send({ id, body: 'in tx' });
          expect(res.status).toBe(201);
          // Only the transaction's own connection can see the row before COMMIT.
          expect(res.body).toEqual({ id, body: 'in tx' });
          expect(route(res)).toBe('primary');
          expect(token(res)).toMatch(/^ey/);
          const read = await request(app.target)
            .get(`/notes/${id}`)
            .set('X-Freshness-Token', token(res)!);
          expect(read.body).toEqual({ id, body: 'in tx' });
        });

        it('sends a row lock to the primary', async () => {
          const id = randomUUID();
          await request(app.target).post('/notes').send({ id, body: 'locked' }).expect(201);
          const res = await request(app.target).get(`/lock/${id}`);
          expect(res.body).toEqual({ id, body: 'locked' });
          expect(route(res)).toBe('primary');
        });

        it('journey at 50 ms apply delay: 0 stale reads, over 80 % of reads on replicas, every transaction on the primary', async () => {
          const seed = randomUUID();
          await cluster.write('INSERT INTO notes VALUES ($1, $2)', [seed, 'seed']);
          await cluster.waitForReplicas();
          await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(JOURNEY_DELAY_MS)));
          let reads = 0;
          let onReplica = 0;
          let stale = 0;
          const read = async (id: string, carried: string | undefined, body: string) => {
            const get = request(app.target).get(`/notes/${id}`);
            const res = await (carried ? get.set('X-Freshness-Token', carried) : get);
            reads++;
            if (/^replica:/.test(route(res) ?? '')) onReplica++;
            if (res.status !== 200 || res.body.body !== body) stale++;
            return token(res) ?? carried;
          };
          try {
            for (let user = 0; user < 5; user++) {
              // Browse (nothing written yet), write, open a transaction, then page through.
              for (let i = 0; i < 4; i++) await read(seed, undefined, 'seed');
              const id = randomUUID();
              const write = await request(app.target).post('/notes').send({ id, body: 'mine' });
              let carried = token(write);
              const tx = randomUUID();
              const res = await request(app.target).post('/tx').send({ id: tx, body: 'tx' });
              // The transaction saw its own row before COMMIT: it ran on one primary connection.
              expect(res.body).toEqual({ id: tx, body: 'tx' });
              expect(route(res)).toBe('primary');
              carried = token(res) ?? carried;
              for (let i = 0; i < 10; i++) {
                await sleep(30);
                carried = await read(i % 2 ? id : tx, carried, i % 2 ? 'mine' : 'tx');
              }
            }
          } finally {
            await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(0)));
          }
          expect(stale).toBe(0);
          expect(onReplica / reads).toBeGreaterThan(0.8);
        });

        it('tells the truth in X-Freshness-Route: a plain read with no token names the replica that served it', async () => {
          await cluster.waitForReplicas();
          const res = await request(app.target).get(`/notes/${randomUUID()}`);
          expect(res.status).toBe(404);
          expect(route(res)).toMatch(/^replica:r[12]$/);
          await expectNoCheckedOutConnections();
        });
      });
    }
  }
});
