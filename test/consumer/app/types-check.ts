// Compiled (never run) by the consumer test under each tsconfig here, with skipLibCheck off:
// every `@ts-expect-error` below fails the build if the type it guards became `any`.
import { createFreshFetch } from '@freshgate/client';
import { type Contract, defineContract, formatLsn, parseLsn } from '@freshgate/core';
import { ManualClock } from '@freshgate/core/testing';
import { fresh, freshDb, freshgate as freshgateExpress } from '@freshgate/express';
import { freshgate as freshgateFastify } from '@freshgate/fastify';
import {
  createFreshgate,
  type FreshDataSource,
  type Freshgate,
  type QueryResultLike,
} from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

export async function expressApp(gate: Freshgate): Promise<express.Express> {
  const app = express();
  app.use(freshgateExpress(gate, { sessionKey: (req) => req.get('x-session-id') }));
  app.get('/cases', fresh('monotonic'), async (req, res) => {
    const db: FreshDataSource = freshDb(req);
    const result: QueryResultLike = await db.query('SELECT 1');
    // @ts-expect-error req.db is absent where freshgate() is not mounted: freshDb(req) checks
    const unchecked: FreshDataSource = req.db;
    // @ts-expect-error req.db is freshgate's data source, which has no such method
    req.db?.notAMethod();
    await req.freshness?.bindSession('user-1');
    await db.withContract('eventual').query('SELECT 1');
    await db.withContract({ maxLag: '2s' }).query('SELECT 1');
    // @ts-expect-error a contract name is one of the six contracts
    fresh('sometimes');
    res.json({ rows: result.rows, unchecked: unchecked === undefined });
  });
  return app;
}

export async function fastifyApp(gate: Freshgate) {
  const app = Fastify();
  await app.register(freshgateFastify, { gate });
  app.get('/cases', { config: { freshness: 'monotonic' } }, async (request) => {
    const db: FreshDataSource = request.db;
    // @ts-expect-error request.db is freshgate's data source, which has no such method
    request.db.notAMethod();
    return (await db.query('SELECT 1')).rows;
  });
  app.get('/bounded', { config: { freshness: { maxLag: '2s', fallback: 'stale' } } }, () => ({}));
  app.get('/off', { config: { freshness: false } }, () => ({}));
  // @ts-expect-error config.freshness takes a contract, not any string
  app.get('/typo', { config: { freshness: 'sometimes' } }, () => ({}));
  return app;
}

export async function gate(): Promise<Freshgate> {
  return createFreshgate({
    primary: 'postgres://127.0.0.1/app',
    replicas: { r1: { connectionString: 'postgres://127.0.0.1/app', max: 5 } },
    secret: 'a secret of at least thirty-two bytes',
    pinStore: redisPinStore(new Redis({ lazyConnect: true })),
  });
}

// The browser client and the pg package in one program, under DOM and non-DOM libs alike.
export const freshFetch = createFreshFetch();
export const contract: Contract = defineContract('read-your-writes');
export const lsn: string = formatLsn(parseLsn('16/B374D848'));
export const clock = new ManualClock();
