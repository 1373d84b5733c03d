import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Where a {@link TcpProxy} forwards connections. */
export interface ProxyTarget {
  host: string;
  port: number;
}

/**
 * A TCP proxy on a loopback port whose target can be moved: the stable address that a
 * virtual IP, a DNS name or PgBouncer gives applications in front of a PostgreSQL primary.
 * Moving it drops the connections to the old target (as a moved VIP does); new connections
 * go to the new one. While it points nowhere (`moveTo(null)`), connections are refused by
 * closing them at once.
 *
 * @example
 * ```ts
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: primary.port });
 * const url = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
 * proxy.moveTo({ host: '127.0.0.1', port: r1.port }); // after promoting r1
 * await proxy.close();
 * ```
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #target: ProxyTarget | null;
  /** Client messages waiting for the capacity, in arrival order across connections. */
  readonly #queue: { upstream: Socket; chunk: Buffer }[] = [];
  #capacity: number | null = null;
  #tokens = 0;
  #refilledAt = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor(server: Server, target: ProxyTarget | null) {
    this.#server = server;
    this.#target = target;
    server.on('connection', (client) => this.#accept(client));
  }

  /** Starts a proxy on a free loopback port, forwarding to `target`. */
  static async start(target: ProxyTarget | null): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** The proxy's own port. */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  /** The current target, or `null` when connections are refused. */
  get target(): ProxyTarget | null {
    return this.#target;
  }

  /** Points new connections at `target` and drops the ones to the previous target. */
  moveTo(target: ProxyTarget | null): void {
    this.#target = target;
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.#pairs.clear();
  }

  /**
   * Makes the target a server of limited capacity: at most `perSecond` client messages (for
   * PostgreSQL, about one per statement) pass per second, in arrival order across all
   * connections; the rest wait in one queue, so latency grows with the load offered beyond
   * the capacity, as on a saturated server. `null` removes the limit.
   */
  setCapacity(perSecond: number | null): void {
    this.#capacity = perSecond;
    this.#tokens = 0;
    this.#refilledAt = performance.now();
    this.#drain();
  }

  /** Client messages waiting for the capacity now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
    this.moveTo(null);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const target = this.#target;
    if (target === null) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const drop = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (this.#capacity === null && this.#queue.length === 0) upstream.write(chunk);
      else {
        this.#queue.push({ upstream, chunk });
        this.#drain();
      }
    });
    upstream.pipe(client);
  }

  #drain(): void {
    const capacity = this.#capacity;
    if (capacity !== null) {
      const now = performance.now();
      // A burst of at most 10 ms of capacity.
      this.#tokens = Math.min(
        Math.max(1, capacity / 100),
        this.#tokens + ((now - this.#refilledAt) * capacity) / 1000,
      );
      this.#refilledAt = now;
    }
    while (this.#queue.length > 0 && (capacity === null || this.#tokens >= 1)) {
      const { upstream, chunk } = this.#queue.shift()!;
      if (capacity !== null) this.#tokens -= 1;
      if (!upstream.destroyed) upstream.write(chunk);
    }
    if (this.#queue.length > 0 && this.#timer === undefined && capacity !== null) {
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.#drain();
        },
        Math.max(1, ((1 - this.#tokens) * 1000) / capacity),
      );
    }
  }
}
