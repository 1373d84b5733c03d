import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CapacityProxy } from './capacity-proxy.js';

function ask(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const closed = () => reject(new Error('closed'));
    socket.once('close', closed);
    socket.once('data', (d) => {
      socket.off('close', closed);
      resolve(String(d));
    });
    socket.write(text);
  });
}

describe('CapacityProxy (a primary of small capacity)', () => {
  let server: Server;
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('passes at most its capacity of messages a second, in order, queueing the rest', async () => {
    server = createServer((socket) => socket.on('data', (d) => socket.write(d)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const proxy = await CapacityProxy.start({ host: '127.0.0.1', port }, 100);
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = createConnection({ host: '127.0.0.1', port: proxy.port }, () => resolve(s));
        s.once('error', reject);
      });
      socket.on('error', () => {});
      const started = performance.now();
      // Request and answer, as a PostgreSQL client does: one message in flight at a time.
      let received = '';
      for (let i = 0; i < 40; i++) received += await ask(socket, `${i},`);
      // 40 messages at 100/s: about 400 ms (a 1-message burst), never much less.
      expect(performance.now() - started).toBeGreaterThan(300);
      expect(received).toBe(Array.from({ length: 40 }, (_, i) => `${i},`).join(''));
      // One message in flight at a time: each waited about 10 ms for its turn.
      const waits = await proxy.takeWaits();
      expect(waits.length).toBe(40);
      expect(waits.filter((w) => w.ms > 5).length).toBeGreaterThan(30);
      proxy.setCapacity(100_000);
      const fast = performance.now();
      for (let i = 0; i < 40; i++) await ask(socket, 'x');
      expect(performance.now() - fast).toBeLessThan(300);
      socket.destroy();
    } finally {
      await proxy.close();
    }
  });
});
