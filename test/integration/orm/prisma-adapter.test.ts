import { randomUUID } from 'node:crypto';
import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

// Prisma's generated client cannot be built here (`prisma generate` downloads its schema
// engine), so this drives @prisma/adapter-pg the way Prisma 7's query runtime does: queries
// through `queryRaw`/`executeRaw`, interactive transactions through `startTransaction()`, then
// `executeRaw(COMMIT)` and `commit()` (which only releases the connection).
const text = { scalarType: 'string', arity: 'scalar' } as const;

describe('@prisma/adapter-pg over a RoutedPool', () => {
  let cluster: Cluster;
  let gate: Freshgate;
  let adapter: Awaited<ReturnType<PrismaPg['connect']>>;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL)');
    await cluster.waitForReplicas();
    gate = await freshgateFor(cluster);
    await untilHealthy(gate);
    // PrismaPg keeps a pool it is given only when it is an `instanceof pg.Pool`.
    adapter = await new PrismaPg(new RoutedPool(gate)).connect();
  });

  afterAll(async () => {
    await adapter?.dispose();
    await gate?.close();
    await cluster?.stop();
  });

  const select = (id: string) => ({
    sql: 'SELECT id, body FROM notes WHERE id = $1',
    args: [id],
    argTypes: [text],
  });

  it('keeps the routed pool (instanceof pg.Pool) and routes its array-mode reads to a replica', async () => {
    expect(adapter.underlyingDriver()).toBeInstanceOf(RoutedPool);
    const req = await gate.begin({ contract: 'eventual' });
    const result = await req.run(() => adapter.queryRaw(select('missing')));
    expect(result.columnNames).toEqual(['id', 'body']);
    expect(req.freshness.headers['X-Freshness-Route']).toBe('replica:r1');
  });

  it('a write issues a token; a read with it sees the write', async () => {
    const id = randomUUID();
    const write = await gate.begin();
    const count = await write.run(() =>
      adapter.executeRaw({
        sql: 'INSERT INTO notes VALUES ($1, $2)',
        args: [id, 'prisma'],
        argTypes: [text, text],
      }),
    );
    expect(count).toBe(1);
    expect(write.freshness.token).toMatch(/^ey/);
    const read = await gate.begin({ token: write.freshness.token! });
    const { rows } = await read.run(() => adapter.queryRaw(select(id)));
    expect(rows).toEqual([[id, 'prisma']]);
  });

  it('an interactive transaction runs on the primary, reads its own write, and COMMIT issues a token', async () => {
    const id = randomUUID();
    const req = await gate.begin();
    const seen = await req.run(async () => {
      const tx = await adapter.startTransaction();
      await tx.executeRaw({
        sql: 'INSERT INTO notes VALUES ($1, $2)',
        args: [id, 'in tx'],
        argTypes: [text, text],
      });
      const { rows } = await tx.queryRaw(select(id));
      expect(req.freshness.token).toBeNull();
      await tx.executeRaw({ sql: 'COMMIT', args: [], argTypes: [] });
      await tx.commit();
      return rows;
    });
    expect(seen).toEqual([[id, 'in tx']]);
    expect(req.freshness.token).toMatch(/^ey/);
    expect(req.freshness.headers['X-Freshness-Route']).toBe('primary');
    const busy = Object.values(gate.status().pools).reduce((n, p) => n + p.total - p.idle, 0);
    expect(busy).toBe(0);
  });
});
