import { createHmac, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { METRIC_BARRIERS, METRIC_TOKEN_REJECTIONS } from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/index.js';
import { connectRedis } from '../integration/redis/support.js';
import { freshgateFor, TEST_SECRET, untilHealthy } from '../integration/support.js';
import {
  type App,
  call,
  captureOutput,
  FRAMEWORKS,
  recordingMeter,
  SCHEMA,
  startApp,
} from './support.js';

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS signed with HMAC-SHA256 under `secret`, whatever `alg` the header claims. */
function jws(header: object, payload: object, secret: string | Buffer = TEST_SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function decode(token: string) {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header!, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>,
  };
}

/** One HTTP/1.1 request written byte for byte (latin-1), for headers fetch refuses to send. */
function raw(
  url: string,
  path: string,
  headerLines: string[],
): Promise<{ status: number; head: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, head: data.split('\r\n\r\n')[0] ?? '' });
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('raw request hung')));
    const request = [
      `GET ${path} HTTP/1.1`,
      `Host: ${hostname}`,
      'Connection: close',
      ...headerLines,
      '',
      '',
    ].join('\r\n');
    socket.write(Buffer.from(request, 'latin1'));
  });
}

/** Rejections strict mode ignores rather than answering 400. */
const IGNORABLE = ['expired', 'foreign-cluster', 'unknown-kid'];

const routeOf = (head: string) => /\r\nx-freshness-route: ([^\r]+)/i.exec(head)?.[1] ?? null;

describe('hostile input over HTTP', () => {
  let cluster: Cluster;
  let redis: Redis;
  let lenient: Freshgate;
  let strict: Freshgate;
  const apps: { framework: string; lenient: App; strict: App }[] = [];
  const telemetry = recordingMeter();
  const output = captureOutput();
  const sessionKeys: string[] = [];
  let valid: string;
  let forged: Record<string, { token: string; reason: string | null }>;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1, redis: true });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    redis = await connectRedis(cluster.redisUrl);
    lenient = await freshgateFor(cluster, {
      cookie: true,
      pinStore: redisPinStore(redis),
      telemetry: { meter: telemetry.meter },
    });
    strict = await freshgateFor(cluster, { strict: true, cookie: true });
    await untilHealthy(lenient);
    await untilHealthy(strict);
    for (const framework of FRAMEWORKS) {
      apps.push({
        framework,
        lenient: await startApp(framework, lenient),
        strict: await startApp(framework, strict),
      });
    }
    const write = await call(`${apps[0]!.lenient.url}/items/seed`, { method: 'POST' });
    valid = write.headers.get('x-freshness-token')!;
    const { header, payload } = decode(valid);
    const now = Math.floor(Date.now() / 1000);
    const [signingInput] = [valid.split('.').slice(0, 2).join('.')];
    forged = {
      'wrong key': { token: jws(header, payload, randomBytes(32)), reason: 'signature' },
      'alg: none': {
        // No signature part: not even the compact form.
        token: `${b64({ ...header, alg: 'none' })}.${b64(payload)}.`,
        reason: 'malformed',
      },
      'HS/RS confusion': { token: jws({ ...header, alg: 'RS256' }, payload), reason: 'algorithm' },
      'tampered payload': {
        token: `${b64(header)}.${b64({ ...payload, lsn: 'FF/FFFFFFFF' })}.${valid.split('.')[2]}`,
        reason: 'signature',
      },
      expired: {
        token: jws(header, { ...payload, iat: now - 7_200, exp: now - 3_600 }),
        reason: 'expired',
      },
      'foreign cluster': {
        token: jws(header, { ...payload, cid: '7000000000000000000/1' }),
        reason: 'foreign-cluster',
      },
      'kid pointing nowhere': {
        token: jws({ ...header, kid: 'nowhere' }, payload),
        reason: 'unknown-kid',
      },
      oversized: { token: `${signingInput}.${'A'.repeat(4_000)}`, reason: 'oversize' },
      garbage: { token: 'not-a-token', reason: 'malformed' },
      'future LSN': { token: jws(header, { ...payload, lsn: 'FFFFFFFF/FFFFFFFF' }), reason: null },
    };
  });

  afterAll(async () => {
    output.restore();
    for (const a of apps) await Promise.all([a.lenient.close(), a.strict.close()]);
    await lenient?.close();
    await strict?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      const app = () => apps.find((a) => a.framework === framework)!;

      it('forged tokens, in the header and the cookie: ignored and counted by reason, never a 5xx or a looser route', async () => {
        for (const [name, { token, reason }] of Object.entries(forged)) {
          const before =
            reason === null
              ? 0
              : telemetry.sum(METRIC_TOKEN_REJECTIONS, { 'freshgate.reason': reason });
          for (const carry of ['header', 'cookie'] as const) {
            const headers: Record<string, string> =
              carry === 'header'
                ? { 'x-freshness-token': token }
                : { cookie: `a=1; fg_fresh=${token}` };
            const strong = await call(`${app().lenient.url}/strong/items/seed`, { headers });
            expect({ name, carry, status: strong.status }).toEqual({ name, carry, status: 200 });
            expect(strong.headers.get('x-freshness-route')).toBe('primary');
            const ryw = await call(`${app().lenient.url}/items/seed`, { headers });
            expect({ name, carry, status: ryw.status }).toEqual({ name, carry, status: 200 });
            expect(ryw.body).toEqual({ version: expect.any(Number) });
            if (reason === null) {
              // A valid token beyond the primary's position: the primary serves it, at once.
              expect(ryw.headers.get('x-freshness-route')).toBe('primary');
              expect(ryw.ms).toBeLessThan(1_000);
            }
            // Strict mode answers a tampered token with a 400, never a 5xx; an expired token,
            // one of another cluster or of a key no longer listed is no fault of the client.
            const strictRead = await call(`${app().strict.url}/items/seed`, { headers });
            const refused = reason !== null && !IGNORABLE.includes(reason);
            expect({ name, carry, status: strictRead.status }).toEqual({
              name,
              carry,
              status: refused ? 400 : 200,
            });
            if (refused) expect(strictRead.body).toMatchObject({ reason });
            // A rejected cookie is cleared, since the page's code cannot drop an HttpOnly one.
            if (carry === 'cookie' && reason !== null) {
              expect(strictRead.headers.getSetCookie()).toContain(
                'fg_fresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax',
              );
            }
          }
          if (reason !== null) {
            expect({
              name,
              counted:
                telemetry.sum(METRIC_TOKEN_REJECTIONS, { 'freshgate.reason': reason }) - before,
            }).toEqual({ name, counted: 4 });
          }
        }
      });

      it('malformed, oversized, non-ASCII and duplicated headers: never a 5xx, never looser', async () => {
        const url = app().lenient.url;
        const cases: string[][] = [
          ['X-Freshness-Token: \xff\xfe\xe9\xe8 t\xf6ken'],
          [`X-Freshness-Token: ${'x'.repeat(60_000)}`],
          [`X-Freshness-Token: ${valid}`, `X-Freshness-Token: ${valid}`],
          [`X-Freshness-Token: ${valid}`, `X-Freshness-Token: ${forged['future LSN']!.token}`],
          ['Cookie: fg_fresh=\xe9\xe9; fg_fresh=""; =; ;;; fg_fresh'],
          [`Cookie: fg_fresh="${'a'.repeat(5_000)}"`],
          ['Cookie: a=1', 'Cookie: fg_fresh=garbage'],
          ['X-Read-After-Write: \xff\xff'],
          [`X-Read-After-Write: ${'true'.repeat(1_000)}`],
          ['X-Read-After-Write: true', 'X-Read-After-Write: true'],
          ['X-Read-After-Write: tRuE '],
          ['X-User: \xe9\xe8\xff', 'X-User: second'],
        ];
        for (const lines of cases) {
          for (const path of ['/strong/items/seed', '/items/seed', '/feed/items/seed']) {
            const { status, head } = await raw(url, path, lines);
            const label = `${path} ${lines.join(' | ').slice(0, 80)}`;
            // 431 (headers too large) is Node's own answer before any middleware runs.
            expect([label, status === 200 || status === 431]).toEqual([label, true]);
            if (status === 200 && path.startsWith('/strong')) expect(routeOf(head)).toBe('primary');
          }
        }
        // The read-after-write hint only tightens: with no LSN known, even an eventual read takes
        // a barrier (the primary's position after it arrived), served by the primary or by a
        // replica that has replayed it.
        const plain = await raw(url, '/eventual/items/seed', []);
        expect(routeOf(plain.head)).toBe('replica:r1');
        const barriers = () =>
          telemetry.sum(METRIC_BARRIERS, { 'freshgate.reason': 'hint-no-lsn' });
        const before = barriers();
        const hinted = await raw(url, '/eventual/items/seed', ['X-Read-After-Write: true']);
        expect(routeOf(hinted.head)).toMatch(/^(primary|replica:r1)$/);
        const upgraded = await raw(url, '/items/seed', ['X-Read-After-Write: tRuE ']);
        expect(routeOf(upgraded.head)).toMatch(/^(primary|replica:r1)$/);
        expect(barriers() - before).toBe(2);
        // Still serving.
        expect((await call(`${url}/items/seed`)).status).toBe(200);
      });

      it('a few hundred random header values: never a 5xx, never a crash', async () => {
        const url = app().lenient.url;
        const alphabet = 'abcXYZ019.-_=;,"\\ \t/+\x7f\x80\xa0\xe9\xff';
        const pick = (n: number) =>
          Array.from(
            { length: n },
            () => alphabet[Math.floor(Math.random() * alphabet.length)],
          ).join('');
        const statuses = new Map<number, number>();
        for (let i = 0; i < 200; i++) {
          const parts = valid.split('.');
          const mutated = parts
            .map((p) => (Math.random() < 0.3 ? pick(Math.floor(Math.random() * 40)) : p))
            .join(Math.random() < 0.9 ? '.' : pick(1));
          const lines = [
            `X-Freshness-Token: ${mutated}`,
            `Cookie: fg_fresh=${pick(20)}; ${pick(5)}`,
            `X-Read-After-Write: ${pick(4)}`,
          ].filter(() => Math.random() < 0.8);
          const { status } = await raw(
            url,
            i % 2 ? '/feed/items/seed' : '/strong/items/seed',
            lines,
          );
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
        // Bytes Node's parser refuses (control characters) get its own 400; nothing else fails.
        expect([...statuses.keys()].filter((s) => s !== 200 && s !== 400)).toEqual([]);
        expect(statuses.get(200)).toBeGreaterThan(20);
      });
    });
  }

  it('session keys never reach Redis in clear, and no secret or session key is logged', async () => {
    for (const a of apps) {
      for (let i = 0; i < 5; i++) {
        const sessionKey = `user-secret-session-${a.framework}-${i}`;
        sessionKeys.push(sessionKey);
        await call(`${a.lenient.url}/items/k${i}`, {
          method: 'POST',
          headers: { 'x-user': sessionKey },
        });
        await call(`${a.lenient.url}/items/k${i}`, { headers: { 'x-user': sessionKey } });
      }
    }
    const keys = await redis.keys('*');
    expect(keys.length).toBeGreaterThanOrEqual(sessionKeys.length);
    // Pins are strings; the store's meta hash (generation, instance heartbeats) is checked too.
    const values = await Promise.all(
      keys.map(async (k) =>
        (await redis.type(k)) === 'hash' ? JSON.stringify(await redis.hgetall(k)) : redis.get(k),
      ),
    );
    const stored = [...keys, ...values].join('\n');
    const logged = output.text();
    for (const secret of [TEST_SECRET, ...sessionKeys]) {
      expect(stored.includes(secret)).toBe(false);
      expect(logged.includes(secret)).toBe(false);
    }
  });
});
