import { randomUUID } from 'node:crypto';
import { ConfigError, UnsafeStatementError } from '@freshgate/core';
import { currentDb, type Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

describe('createFreshgate({ asyncContext: false }): requests run outside AsyncLocalStorage', () => {
  let cluster: Cluster;
  let gate: Freshgate;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    gate = await freshgateFor(cluster, { asyncContext: false, poolSize: 3 });
    await untilHealthy(gate);
  });

  afterAll(async () => {
    await gate?.close();
    await cluster?.stop();
  });

  it('routes the request data source as usual, while currentDb() says why it has none', async () => {
    const started = await gate.begin({ contract: 'eventual' });
    expect(gate.asyncContext).toBe(false);
    const { rows } = await started.run(() => started.db.query('SELECT 1 AS one'));
    expect(rows).toEqual([{ one: 1 }]);
    expect(started.freshness.headers['X-Freshness-Route']).toBe('replica:r1');
    expect(() => started.run(() => currentDb())).toThrow(/asyncContext: false.*use req\.db/);
  });

  it('commits what tx sends and issues a token', async () => {
    const id = randomUUID();
    const { db, freshness } = await gate.begin();
    const seen = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'draft']);
      return tx.query('SELECT body FROM notes WHERE id = $1', [id]);
    });
    expect(seen.rows).toEqual([{ body: 'draft' }]);
    expect(freshness.token).toMatch(/^ey/);
    expect(await cluster.primary.query('SELECT body FROM notes WHERE id = $1', [id])).toEqual([
      { body: 'draft' },
    ]);
  });

  it('rejects statements and transactions sent beside tx while it is open, and takes them again after', async () => {
    const id = randomUUID();
    const { db } = await gate.begin();
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [id, 'draft']);
      // Nothing tells fn's statements from the request's others: none may silently run
      // outside the transaction it meant to join.
      await expect(db.query('SELECT 1')).rejects.toThrow(ConfigError);
      await expect(db.primary().query('SELECT 1')).rejects.toThrow(/send statements through tx/);
      await expect(db.transaction(async () => {})).rejects.toThrow(UnsafeStatementError);
    });
    const { rows } = await db.query('SELECT body FROM notes WHERE id = $1', [id]);
    expect(rows).toEqual([{ body: 'draft' }]);
  });

  it('is refused by RoutedPool, and must be a boolean', async () => {
    expect(() => new RoutedPool(gate)).toThrow(
      /RoutedPool finds each request through async context/,
    );
    await expect(freshgateFor(cluster, { asyncContext: 'no' as never })).rejects.toThrow(
      /asyncContext.*expected true or false/,
    );
  });
});
