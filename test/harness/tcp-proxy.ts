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

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
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
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
