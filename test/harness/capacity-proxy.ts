import { Worker } from 'node:worker_threads';
import type { ProxyTarget } from './tcp-proxy.js';

const PROXY = `
const { createConnection, createServer } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const queue = [];
// Each message's wait in the queue: [epoch ms when it passed, ms waited].
let waits = [];
let capacity = workerData.capacity;
let tokens = 0;
let refilledAt = performance.now();
let timer;
function drain() {
  const now = performance.now();
  // A burst of at most 10 ms of capacity.
  tokens = Math.min(Math.max(1, capacity / 100), tokens + ((now - refilledAt) * capacity) / 1000);
  refilledAt = now;
  while (queue.length > 0 && tokens >= 1) {
    const { upstream, chunk, at } = queue.shift();
    tokens -= 1;
    const now = performance.now();
    waits.push([performance.timeOrigin + now, now - at]);
    if (!upstream.destroyed) upstream.write(chunk);
  }
  if (queue.length > 0 && timer === undefined) {
    timer = setTimeout(() => { timer = undefined; drain(); }, Math.max(1, ((1 - tokens) * 1000) / capacity));
  }
}
const sockets = new Set();
const server = createServer((client) => {
  const upstream = createConnection(workerData.target);
  sockets.add(client); sockets.add(upstream);
  const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  client.on('data', (chunk) => { queue.push({ upstream, chunk, at: performance.now() }); drain(); });
  upstream.pipe(client);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', (message) => {
  if (message.capacity !== undefined) { capacity = message.capacity; drain(); }
  if (message.take) { parentPort.postMessage({ waits }); waits = []; }
  if (message.close) {
    clearTimeout(timer);
    for (const socket of sockets) socket.destroy();
    server.close(() => parentPort.close());
  }
});
`;

/**
 * A TCP proxy of limited capacity, on its own thread (its queue is not delayed by the event
 * loop of the process under test): at most `capacity` client messages a second (for
 * PostgreSQL, about one per statement) pass to the target, in arrival order across all
 * connections; the rest wait in one queue. A server of that size as its clients see it:
 * latency grows with the load offered beyond the capacity.
 *
 * @example
 * ```ts
 * const small = await CapacityProxy.start({ host: '127.0.0.1', port: primary.port }, 800);
 * const url = `postgres://postgres@127.0.0.1:${small.port}/postgres`;
 * await small.close();
 * ```
 */
export class CapacityProxy {
  readonly #worker: Worker;
  readonly port: number;

  private constructor(worker: Worker, port: number) {
    this.#worker = worker;
    this.port = port;
  }

  static async start(target: ProxyTarget, capacity: number): Promise<CapacityProxy> {
    const worker = new Worker(PROXY, { eval: true, workerData: { target, capacity } });
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: { port: number }) => resolve(m.port));
      worker.once('error', reject);
    });
    return new CapacityProxy(worker, port);
  }

  /** Messages a second from now on. */
  setCapacity(capacity: number): void {
    this.#worker.postMessage({ capacity });
  }

  /**
   * How long each message waited in the queue since the previous call (`at`: when it passed,
   * as `performance.now()`): the queueing a server of this size adds to its latency.
   */
  async takeWaits(): Promise<{ at: number; ms: number }[]> {
    const reply = new Promise<[number, number][]>((resolve) => {
      const onMessage = (m: { waits?: [number, number][] }) => {
        if (m.waits === undefined) return;
        this.#worker.off('message', onMessage);
        resolve(m.waits);
      };
      this.#worker.on('message', onMessage);
    });
    this.#worker.postMessage({ take: true });
    return (await reply).map(([epoch, ms]) => ({ at: epoch - performance.timeOrigin, ms }));
  }

  /** Drops every connection and stops the thread. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage({ close: true });
    const timer = setTimeout(() => void this.#worker.terminate(), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
