import { randomUUID } from 'node:crypto';
import { ConfigError, UnsafeStatementError } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { RoutedPool } from '@freshgate/pg/routed-pool';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../harness/index.js';
import { freshgateFor, untilHealthy } from '../support.js';

// The statement answers where it ran: a replica is in recovery, the primary is not.
const WHERE = 'SELECT pg_is_in_recovery() AS replica';

describe('RoutedPool: a pg.Pool routed by the current request', () => {
  let cluster: Cluster;
  let gate: Freshgate;
  let pool: RoutedPool;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1 });
    await cluster.primary.query('CREATE TABLE items (id text PRIMARY KEY, n int)');
    await cluster.waitForReplicas();
    gate = await freshgateFor(cluster);
    await untilHealthy(gate);
    pool = new RoutedPool(gate);
  });

  afterAll(async () => {
    await pool?.end();
    await gate?.close();
    await cluster?.stop();
  });

  const checkedOut = () =>
    Object.values(gate.status().pools).reduce((sum, p) => sum + p.total - p.idle, 0);

  it('is a pg.Pool to instanceof and constructor-name checks (Drizzle, Prisma)', () => {
    expect(pool).toBeInstanceOf(pg.Pool);
    expect(Object.getPrototypeOf(pool).constructor.name).toContain('Pool');
  });

  it('rejects an unknown option or value at construction', () => {
    expect(() => new RoutedPool(gate, { outsideRequest: 'replica' as never })).toThrow(ConfigError);
    expect(() => new RoutedPool(gate, { outsideReqest: 'primary' } as never)).toThrow(ConfigError);
  });

  it('routes every node-postgres call form inside a request: text, QueryConfig with rowMode and types, callback', async () => {
    const req = await gate.begin({ contract: 'eventual' });
    await req.run(async () => {
      expect((await pool.query(WHERE)).rows).toEqual([{ replica: true }]);
      const arrays = await pool.query(
        { text: 'SELECT $1::int AS a, $2::text AS b', rowMode: 'array' },
        [1, 'x'],
      );
      expect(arrays.rows).toEqual([[1, 'x']]);
      const types = {
        getTypeParser: (oid: number) => (oid === 23 ? (v: string) => `int:${v}` : (v: string) => v),
      };
      const typed = await pool.query({ text: 'SELECT 7::int AS n', types, values: [] });
      expect(typed.rows).toEqual([{ n: 'int:7' }]);
      const viaCallback = await new Promise((resolve, reject) =>
        pool.query('SELECT $1::int AS n', [5], (error: Error | null, result: pg.QueryResult) =>
          error ? reject(error) : resolve(result.rows),
        ),
      );
      expect(viaCallback).toEqual([{ n: 5 }]);
    });
    expect(req.freshness.headers['X-Freshness-Route']).toBe('replica:r1');
  });

  it("outside a request runs on the primary, or throws with outsideRequest: 'throw'", async () => {
    expect((await pool.query(WHERE)).rows).toEqual([{ replica: false }]);
    const client = await pool.connect();
    try {
      expect((await client.query(WHERE)).rows).toEqual([{ replica: false }]);
    } finally {
      client.release();
    }
    const strict = new RoutedPool(gate, { outsideRequest: 'throw' });
    await expect(strict.query('SELECT 1')).rejects.toThrow(/outside a request/);
    await expect(strict.connect()).rejects.toThrow(/outside a request/);
  });

  it('a connected client routes plain reads, runs BEGIN … COMMIT on one primary connection, and COMMIT issues a token', async () => {
    const id = randomUUID();
    const req = await gate.begin({ contract: 'read-your-writes' });
    await req.run(async () => {
      const client = await pool.connect();
      try {
        expect((await client.query(WHERE)).rows).toEqual([{ replica: true }]);
        await client.query('BEGIN');
        expect((await client.query(WHERE)).rows).toEqual([{ replica: false }]);
        await client.query('INSERT INTO items VALUES ($1, 1)', [id]);
        await client.query('SAVEPOINT sp1');
        await client.query('UPDATE items SET n = 2 WHERE id = $1', [id]);
        await client.query('ROLLBACK TO SAVEPOINT sp1');
        // Its own uncommitted row: only the transaction's connection sees it.
        expect((await client.query('SELECT n FROM items WHERE id = $1', [id])).rows).toEqual([
          { n: 1 },
        ]);
        expect(req.freshness.token).toBeNull();
        const commit = await client.query('COMMIT');
        expect(commit.command).toBe('COMMIT');
        expect(req.freshness.token).toMatch(/^ey/);
      } finally {
        client.release();
      }
    });
    expect(req.freshness.headers['X-Freshness-Route']).toBe('primary');
    expect(await cluster.primary.query('SELECT n FROM items WHERE id = $1', [id])).toEqual([
      { n: 1 },
    ]);
    expect(checkedOut()).toBe(0);
  });

  it('issues no token for an aborted transaction (COMMIT answered with ROLLBACK) and says primary for a rolled-back one', async () => {
    const req = await gate.begin({ contract: 'read-your-writes' });
    await req.run(async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
        expect((await client.query('COMMIT')).command).toBe('ROLLBACK');
        await client.query('BEGIN');
        await client.query('SELECT 1');
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    });
    expect(req.freshness.token).toBeNull();
    expect(req.freshness.headers['X-Freshness-Route']).toBe('primary');
    expect(checkedOut()).toBe(0);
  });

  it('refuses session state that would outlive the statement or the transaction', async () => {
    const req = await gate.begin();
    await req.run(async () => {
      await expect(pool.query("SET search_path = 'x'")).rejects.toBeInstanceOf(
        UnsafeStatementError,
      );
      const client = await pool.connect();
      try {
        await expect(client.query("SET search_path = 'x'")).rejects.toBeInstanceOf(
          UnsafeStatementError,
        );
        await client.query('BEGIN');
        await client.query("SET LOCAL lock_timeout = '1s'");
        await expect(client.query("SET search_path = 'x'")).rejects.toBeInstanceOf(
          UnsafeStatementError,
        );
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    });
  });

  it('closes the connection of a transaction released while open: nothing commits, nothing leaks', async () => {
    const id = randomUUID();
    const before = gate.primary.totalCount;
    const req = await gate.begin();
    await req.run(async () => {
      const client = await pool.connect();
      await client.query('BEGIN');
      await client.query('INSERT INTO items VALUES ($1, 1)', [id]);
      client.release();
      expect(() => client.release()).toThrow(/already been released/);
      await expect(client.query('SELECT 1')).rejects.toThrow(/released/);
    });
    expect(req.freshness.token).toBeNull();
    expect(await cluster.primary.query('SELECT 1 FROM items WHERE id = $1', [id])).toEqual([]);
    expect(checkedOut()).toBe(0);
    expect(gate.primary.totalCount).toBeLessThanOrEqual(before);
  });

  it('leaks no connection over many requests, transactions and failed statements', async () => {
    for (let i = 0; i < 30; i++) {
      const req = await gate.begin();
      await req.run(async () => {
        await pool.query('SELECT 1');
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          if (i % 3 === 0) await client.query('SELECT missing_column FROM items').catch(() => {});
          await client.query(i % 2 ? 'COMMIT' : 'ROLLBACK');
          await client.query('SELECT 1');
        } finally {
          client.release();
        }
      });
    }
    expect(checkedOut()).toBe(0);
  });
});
