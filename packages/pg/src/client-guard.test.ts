import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFreshgate, type Freshgate } from './cluster.js';
import type { PoolClientLike } from './pg-types.js';

/** One backend message: type byte, length, body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const fields = (pairs: [string, string][]) =>
  Buffer.concat([...pairs.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]);

/**
 * A server that completes the start-up of every connection and, in the same TCP segment,
 * terminates it the way PostgreSQL does on a fast shutdown: ReadyForQuery followed by a FATAL
 * 57P01. node-postgres parses both in one go, so the error is emitted while the pool hands
 * the connection out, before the caller of `pool.connect()` runs.
 */
async function startUpThenFatal(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket: Socket) => {
    socket.once('data', () => {
      const ok = Buffer.alloc(4); // AuthenticationOk
      const ready = Buffer.from('I');
      const fatal = fields([
        ['S', 'FATAL'],
        ['V', 'FATAL'],
        ['C', '57P01'],
        ['M', 'terminating connection due to administrator command'],
      ]);
      socket.end(Buffer.concat([message('R', ok), message('Z', ready), message('E', fatal)]));
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

describe('pool clients', () => {
  let server: Server | undefined;
  let gate: Freshgate | undefined;

  afterEach(async () => {
    await gate?.close();
    server?.close();
  });

  it('an error in the same read as the end of start-up does not crash the process', async () => {
    const started = await startUpThenFatal();
    server = started.server;
    const url = `postgres://app@127.0.0.1:${started.port}/app`;
    gate = await createFreshgate({
      primary: url,
      replicas: { r1: url },
      secret: 'client-guard-unit-test-secret-long-enough!!',
    });
    // Without a listener from the moment the pool made the client, the FATAL would be an
    // uncaught exception here (and fail this run).
    const client = (await gate.primary.connect()) as PoolClientLike & {
      listenerCount(event: string): number;
    };
    expect(client.listenerCount('error')).toBeGreaterThan(0);
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release(true);
  });
});
