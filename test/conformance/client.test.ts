import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFreshFetch, readToken } from '@freshgate/client';
import type { Freshgate } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import { type ConformanceApp, expressApp, fastifyApp } from './apps.js';

// @freshgate/client against real servers: service A (Express) and service B (Fastify) on one
// engine over primary + 2 replicas.
describe('@freshgate/client against a real freshgate server', () => {
  let cluster: Cluster;
  let engine: Freshgate;
  let serviceA: string;
  let serviceB: string;
  let fastify: ConformanceApp;
  let server: Server;

  const paused = async <T>(fn: () => Promise<T>): Promise<T> => {
    await Promise.all(cluster.replicas.map((r) => r.pause()));
    try {
      return await fn();
    } finally {
      await Promise.all(cluster.replicas.map((r) => r.resume()));
      await cluster.waitForReplicas();
    }
  };
  const post = (api: typeof fetch, path: string, body: object) =>
    api(`${serviceA}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query('CREATE TABLE notes (id text PRIMARY KEY, body text)');
    await cluster.waitForReplicas();
    engine = await freshgateFor(cluster, {
      monitor: {
        health: { exitLag: 60_000, exitFor: 60_000, enterLag: 60_000, enterFor: 0 },
      },
    });
    await untilHealthy(engine);
    const express = expressApp(engine).target as import('express').Express;
    server = await new Promise<Server>((resolve) => {
      const s = express.listen(0, '127.0.0.1', () => resolve(s));
    });
    serviceA = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fastify = await fastifyApp(engine);
    const b = fastify.target as Server;
    await new Promise<void>((resolve) => b.listen(0, '127.0.0.1', resolve));
    serviceB = `http://127.0.0.1:${(b.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await fastify?.close();
    await engine?.close();
    await cluster?.stop();
  });

  it('keeps the write token and sends it back: the next read sees the write while replicas lag', async () => {
    const api = createFreshFetch({ origins: [serviceA] });
    const id = randomUUID();
    await paused(async () => {
      expect((await post(api, '/notes', { id, body: 'mine' })).status).toBe(201);
      expect(api.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const read = await api(`${serviceA}/notes/${id}`);
      expect(read.status).toBe(200);
      expect(read.headers.get('x-freshness-route')).toBe('primary');
      // Control: plain fetch, no token: a lagging replica answers and misses the write.
      const plain = await fetch(`${serviceA}/notes/${id}`);
      expect(plain.status).toBe(404);
      expect(plain.headers.get('x-freshness-route')).toMatch(/^replica:/);
    });
  });

  it('keeps the newest token when an older write answers last', async () => {
    const api = createFreshFetch({ origins: [serviceA] });
    const slow = post(api, '/slow-write', { id: randomUUID() }); // token issued first, answers last
    await new Promise((r) => setTimeout(r, 200));
    const fast = await post(api, '/notes', { id: randomUUID(), body: 'newer' });
    const newest = fast.headers.get('x-freshness-token') as string;
    const older = (await slow).headers.get('x-freshness-token') as string;
    expect(readToken(older)?.lsn).toBeLessThan(readToken(newest)?.lsn as bigint);
    expect(api.token).toBe(newest);
  });

  it('sends X-Read-After-Write on demand: a read with no known LSN goes to the primary', async () => {
    const api = createFreshFetch({ origins: [serviceA] });
    const id = randomUUID();
    await paused(async () => {
      await post(fetch, '/notes', { id, body: 'elsewhere' });
      const hinted = await api(`${serviceA}/eventual/${id}`, { readAfterWrite: true });
      expect(hinted.status).toBe(200);
      expect(hinted.headers.get('x-freshness-route')).toBe('primary');
      expect((await api(`${serviceA}/eventual/${id}`)).status).toBe(404);
    });
  });

  it("forwards the request's token to another service (causal reads across services)", async () => {
    const api = createFreshFetch({ origins: [serviceA] });
    const id = randomUUID();
    await paused(async () => {
      await post(api, '/notes', { id, body: 'causal' });
      const via = `${serviceA}/forward?to=${encodeURIComponent(`${serviceB}/notes/${id}`)}`;
      const forwarded = await api(via);
      expect(forwarded.status).toBe(200);
      expect(await forwarded.json()).toEqual({ body: 'causal' });
      // Control: without a token to forward, service B reads a lagging replica.
      expect((await fetch(via)).status).toBe(404);
    });
  });
});
