import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { withTimeout } from './timeout.js';

const timedOut = () => new Error('timed out');

function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the process is busy: no timer and no I/O callback can run
  }
}

describe('withTimeout', () => {
  const sockets: Socket[] = [];
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const server of servers.splice(0)) server.close();
  });

  it('settles with the value when it comes in time, and rejects when it does not', async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000, timedOut)).resolves.toBe(7);
    await expect(withTimeout(new Promise(() => {}), 5, timedOut)).rejects.toThrow('timed out');
  });

  it('a reply that arrived while the process stalled past the timeout is not a timeout', async () => {
    // A loopback socket pair: the reply is written before the stall, so it is waiting in the
    // kernel when the process wakes, together with the overdue timer.
    const server = createServer();
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const accepted = once(server, 'connection');
    const client = connect(port, '127.0.0.1');
    sockets.push(client);
    const [peer] = (await accepted) as [Socket];
    sockets.push(peer);
    await once(client, 'connect').catch(() => undefined);
    // Continue from an I/O callback, as a request handler does: the next phase to run
    // after the stall is the timers', before the poll that reads the reply.
    await new Promise<void>((resolve) => {
      peer.once('data', () => resolve());
      client.write('?');
    });

    const reply = new Promise<string>((resolve) =>
      client.once('data', (data) => resolve(data.toString())),
    );
    const result = withTimeout(reply, 20, timedOut);
    peer.write('!');
    stall(80);
    await expect(result).resolves.toBe('!');
  });
});
