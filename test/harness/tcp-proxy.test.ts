import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { TcpProxy } from './tcp-proxy.js';

/** A TCP server that answers every chunk with `<name>:<chunk>`. */
async function echo(name: string): Promise<Server> {
  const server = createServer((socket) => socket.on('data', (d) => socket.write(`${name}:${d}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      // A dropped connection may end with a reset: expected here, not a crash.
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function ask(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d) => resolve(String(d)));
    socket.once('close', () => reject(new Error('closed')));
    socket.write(text);
  });
}

const closed = (socket: Socket) =>
  new Promise<void>((resolve) =>
    socket.closed ? resolve() : socket.once('close', () => resolve()),
  );

describe('TcpProxy (the movable primary address)', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('forwards to its target, drops old connections when moved, and refuses while it points nowhere', async () => {
    const a = await echo('a');
    const b = await echo('b');
    servers.push(a, b);
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: portOf(a) });
    try {
      const first = await connect(proxy.port);
      expect(await ask(first, 'x')).toBe('a:x');

      proxy.moveTo(null);
      await closed(first);
      const refused = await connect(proxy.port);
      await closed(refused);

      proxy.moveTo({ host: '127.0.0.1', port: portOf(b) });
      const second = await connect(proxy.port);
      expect(await ask(second, 'y')).toBe('b:y');
      second.destroy();
    } finally {
      await proxy.close();
    }
  });
});
