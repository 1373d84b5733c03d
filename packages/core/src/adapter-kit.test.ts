import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createAdapterKit, type FreshgateHost } from './adapter-kit.js';
import { ConfigError } from './errors.js';
import { toProblem } from './problem.js';
import { createTestHost, type TestDb } from './test-host.js';

/** A whole adapter for bare `node:http`, on the kit: what a third framework needs. */
function nodeAdapter(
  gate: FreshgateHost<TestDb>,
  options: { sessionKey?: (req: IncomingMessage) => string | undefined | Promise<string> } = {},
) {
  const kit = createAdapterKit<IncomingMessage, ServerResponse, TestDb>(gate, options, {
    name: 'nodeAdapter() options',
    io: {
      headers: (req) => req.headers,
      secure: () => false,
      response: (res) => ({
        get: (name) => res.getHeader(name),
        set: (name, value) => res.setHeader(name, value),
        append: (name, value) => res.appendHeader(name, value),
        remove: (name) => res.removeHeader(name),
      }),
    },
  });
  return (handler: (db: TestDb, res: ServerResponse) => Promise<void>) =>
    (req: IncomingMessage, res: ServerResponse) =>
      kit.start(
        req,
        res,
        kit.defaultContract,
        (started) => void handler(started.db, res),
        (error) => {
          const problem = toProblem(error);
          res
            .writeHead(problem?.status ?? 500, problem?.headers)
            .end(JSON.stringify(problem?.body));
        },
      );
}

async function serve(listener: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((r) => server.close(r)) };
}

describe('createAdapterKit', () => {
  it('fails at creation on a wrong host or option, naming it', async () => {
    const host = await createTestHost();
    const io = { headers: () => ({}), secure: () => false, response: () => ({}) as never };
    expect(() => createAdapterKit({} as never, {}, { name: 'x', io })).toThrow(/`freshgate`/);
    expect(() => createAdapterKit(host, { sesionKey: 1 } as never, { name: 'x', io })).toThrow(
      /`sesionKey`.*Did you mean "sessionKey"/,
    );
    expect(() => createAdapterKit(host, { sessionKey: 'id' } as never, { name: 'x', io })).toThrow(
      ConfigError,
    );
    expect(() =>
      createAdapterKit(host, { contract: 'eventul' as never }, { name: 'x', io }),
    ).toThrow(/`contract`/);
  });

  it('runs the handler inside the request (current data source), with the session key and response headers', async () => {
    const host = await createTestHost();
    const adapter = nodeAdapter(host, { sessionKey: async (req) => String(req.headers['x-user']) });
    const { base, close } = await serve(
      adapter(async (db, res) => {
        await db.freshness.wrote(0x20n);
        res.end(JSON.stringify({ current: host.current() === db, lsn: db.freshness.commitLsn }));
      }),
    );
    try {
      const res = await fetch(base, { headers: { 'X-User': 'ada' } });
      expect(await res.json()).toEqual({ current: true, lsn: '0/20' });
      expect(res.headers.get('x-freshness-token')).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(res.headers.get('x-freshness-route')).toBe('primary');
      expect(res.headers.get('access-control-expose-headers')).toContain('X-Freshness-Token');
    } finally {
      await close();
    }
  });

  it('sends a strict-mode token rejection to fail, never to the handler', async () => {
    const host = await createTestHost({ strict: true });
    let handled = 0;
    const { base, close } = await serve(
      nodeAdapter(host)(async (_db, res) => {
        handled++;
        res.end('{}');
      }),
    );
    try {
      const res = await fetch(base, { headers: { 'X-Freshness-Token': 'garbage' } });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(handled).toBe(0);
    } finally {
      await close();
    }
  });

  it('passes its last argument on to enter and fail, and asks for the header target only once a header is set', async () => {
    const host = await createTestHost({ strict: true });
    const targets: string[] = [];
    const kit = createAdapterKit<IncomingMessage, ServerResponse, TestDb>(
      host,
      {},
      {
        name: 'x',
        io: {
          headers: (req) => req.headers,
          secure: () => false,
          response: (res) => {
            targets.push(String(res.req.url));
            return {
              get: (name) => res.getHeader(name),
              set: (name, value) => res.setHeader(name, value),
              append: (name, value) => res.appendHeader(name, value),
              remove: (name) => res.removeHeader(name),
            };
          },
        },
      },
    );
    const seen: string[] = [];
    const { base, close } = await serve((req, res) =>
      kit.start(
        req,
        res,
        kit.defaultContract,
        async (started, request, arg) => {
          seen.push(`enter ${request === req} ${arg}`);
          if (req.url === '/write') await started.db.freshness.wrote(0x20n);
          res.end('{}');
        },
        (_error, request, response, arg) => {
          seen.push(`fail ${request === req && response === res} ${arg}`);
          res.writeHead(400).end();
        },
        req.url,
      ),
    );
    try {
      await fetch(`${base}/read`);
      await fetch(`${base}/write`);
      await fetch(`${base}/bad`, { headers: { 'X-Freshness-Token': 'garbage' } });
      expect(seen).toEqual(['enter true /read', 'enter true /write', 'fail true /bad']);
      expect(targets).toEqual(['/write']);
    } finally {
      await close();
    }
  });
});
