import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

type Step = (fg: Freshgate) => Promise<void>;

class HandlerError extends Error {}

// What handlers do, good and bad. "Abandoned" starts a query and returns without awaiting
// it, as a handler does when the client went away mid-request.
const STEPS: Record<string, Step> = {
  read: async (fg) => {
    const { db } = await fg.begin({ contract: 'read-your-writes' });
    await db.query('SELECT count(*) FROM notes');
  },
  write: async (fg) => {
    const { db } = await fg.begin();
    await db.query("INSERT INTO notes (body) VALUES ('w')");
  },
  'sql error': async (fg) => {
    const { db } = await fg.begin({ contract: 'eventual' });
    await db.query('SELECT * FROM no_such_table');
  },
  'handler throws after a read': async (fg) => {
    const { db } = await fg.begin({ contract: 'monotonic' });
    await db.query('SELECT 1');
    throw new HandlerError('boom');
  },
  'transaction throws': async (fg) => {
    const { db } = await fg.begin();
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO notes (body) VALUES ('rolled back')");
      throw new HandlerError('boom');
    });
  },
  'transaction with a failing statement': async (fg) => {
    const { db } = await fg.begin();
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes (id) VALUES (NULL)');
    });
  },
  abandoned: async (fg) => {
    const { db } = await fg.begin({ contract: 'eventual' });
    void db.query('SELECT pg_sleep(0.005)').catch(() => {});
  },
};

describe('connection hygiene', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    freshgate = await freshgateFor(cluster, { poolSize: 5 });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    await cluster?.stop();
  });

  it('after 1 000 requests with random handler errors and abandoned queries, no connection is checked out', async () => {
    const names = Object.keys(STEPS);
    const counts = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < 1_000) {
        next++;
        const name = names[Math.floor(Math.random() * names.length)]!;
        counts.set(name, (counts.get(name) ?? 0) + 1);
        await STEPS[name]!(freshgate).catch((error) => {
          // Only the errors the handlers cause may surface; anything else is a bug.
          if (!(error instanceof HandlerError) && !/no_such_table|null value/.test(String(error)))
            throw error;
        });
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    expect(counts.size).toBe(names.length);
    // Abandoned queries finish within milliseconds; give them (generously) time to.
    await new Promise((r) => setTimeout(r, 500));
    for (const [name, pool] of [['primary', freshgate.primary] as const, ...freshgate.replicas]) {
      expect({ name, busy: pool.totalCount - pool.idleCount, waiting: pool.waitingCount }).toEqual({
        name,
        busy: 0,
        waiting: 0,
      });
    }
  });
});
