import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { settleWithin, withTimeout } from './timeout.js';

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

describe('settleWithin', () => {
  const use = (value: number) => value * 2;
  const handled = (error: unknown, late: boolean) => {
    throw new Error(`${late ? 'late' : 'failed'}: ${(error as Error).message}`);
  };

  it('runs onValue on a value in time, onError on a rejection, and onError(timeout, true) when none came', async () => {
    await expect(settleWithin(Promise.resolve(7), 1_000, timedOut, use, handled)).resolves.toBe(14);
    await expect(
      settleWithin(Promise.reject(new Error('refused')), 1_000, timedOut, use, handled),
    ).rejects.toThrow('failed: refused');
    await expect(
      settleWithin(new Promise<number>(() => {}), 5, timedOut, use, handled),
    ).rejects.toThrow('late: timed out');
    // onError may answer instead of throwing.
    await expect(
      settleWithin(new Promise<number>(() => {}), 5, timedOut, use, () => -1),
    ).resolves.toBe(-1);
  });

  it('a throwing onValue rejects the call without calling onError', async () => {
    const errors: unknown[] = [];
    const result = settleWithin(
      Promise.resolve(1),
      1_000,
      timedOut,
      () => {
        throw new Error('not mine');
      },
      (error) => {
        errors.push(error);
        return 0;
      },
    );
    await expect(result).rejects.toThrow('not mine');
    expect(errors).toEqual([]);
  });

  it('an outcome after the timeout calls neither handler', async () => {
    let release: (value: number) => void = () => {};
    const late = new Promise<number>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    const result = settleWithin(
      late,
      5,
      timedOut,
      (value) => {
        seen.push(`value ${value}`);
        return value;
      },
      (_error, timedOutNow) => {
        seen.push(`error ${timedOutNow}`);
        return -1;
      },
    );
    await expect(result).resolves.toBe(-1);
    release(3);
    await late;
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['error true']);
  });
});
