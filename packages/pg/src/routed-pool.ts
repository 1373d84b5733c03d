import { ConfigError } from '@freshgate/core';
import { checkOptions } from '@freshgate/core/adapter';
import pg from 'pg';
import type { Freshgate } from './cluster.js';
import { activeDb } from './current-db.js';
import { primaryOutcome } from './data-source.js';
import type { PoolClientLike, PoolLike, QueryResultLike } from './pg-types.js';
import {
  type RoutedBackend,
  RoutedClient,
  settle,
  splitCallback,
  toConfig,
} from './routed-client.js';

/** What a routed pool does with a statement sent outside a request handled by freshgate. */
export type OutsideRequest = 'primary' | 'throw';

/** Default of {@link RoutedPoolOptions.outsideRequest}. */
export const DEFAULT_OUTSIDE_REQUEST: OutsideRequest = 'primary';

/** Options of {@link RoutedPool}. */
export interface RoutedPoolOptions {
  /**
   * Statements sent outside a request (start-up, migrations, jobs): `'primary'` runs them on
   * the primary's pool, `'throw'` rejects them (to find code that escapes the request
   * context). Default `'primary'`.
   */
  outsideRequest?: OutsideRequest;
}

type Callback = (error: Error | null, result?: unknown) => void;

/**
 * A `pg.Pool` for ORMs and query builders (Drizzle, Kysely, Prisma's pg adapter, TypeORM):
 * it holds no connection of its own; each statement runs where the current request's
 * freshgate data source (`currentDb()`) sends it, by the same rules as `req.db.query()`:
 * reads to one replica per request that satisfies the route's contract, writes and locking
 * reads to the primary with the commit LSN captured so the response carries a token.
 * `connect()` returns a client whose `BEGIN … COMMIT` runs on one primary connection and whose
 * other statements are routed. Outside a request, statements go to the primary (or throw).
 *
 * It is a real `pg.Pool` subclass, so `instanceof pg.Pool` checks pass. Its own counts stay 0
 * (`gate.status().pools` has the real ones) and `end()` leaves the freshgate pools open
 * (`gate.close()` ends the ones freshgate created).
 *
 * @example
 * ```ts
 * import { RoutedPool } from '@freshgate/pg/routed-pool';
 * import { drizzle } from 'drizzle-orm/node-postgres';
 *
 * const db = drizzle({ client: new RoutedPool(gate) });
 * app.get('/notes/:id', async (req, res) => {
 *   res.json(await db.select().from(notes).where(eq(notes.id, req.params.id)));
 * });
 * ```
 */
export class RoutedPool extends pg.Pool {
  readonly #gate: Freshgate;
  readonly #outside: OutsideRequest;
  readonly #backend: RoutedBackend;

  constructor(gate: Freshgate, options: RoutedPoolOptions = {}) {
    // The primary's settings, so that code reading `pool.options` sees the real database.
    super({ ...(gate.primary.options as pg.PoolConfig | undefined) });
    checkOptions(options, ['outsideRequest'], 'RoutedPool options');
    // Without the context, every statement would look sent outside a request.
    if (gate.asyncContext === false) {
      throw new ConfigError(
        'asyncContext',
        'RoutedPool finds each request through async context: create the gate without asyncContext: false',
      );
    }
    const outside = options.outsideRequest ?? DEFAULT_OUTSIDE_REQUEST;
    if (outside !== 'primary' && outside !== 'throw')
      throw new ConfigError('outsideRequest', "expected 'primary' or 'throw'");
    this.#gate = gate;
    this.#outside = outside;
    this.#backend = {
      primary: gate.primary,
      commitLsnSql: () => `${gate.commitLsnFunction}()::text AS lsn`,
      observePrimary: (latencyMs, outcome) =>
        gate.engine.observePrimary(latencyMs, outcome, gate.primary.waitingCount),
    };
  }

  #outsideRequest(): PoolLike {
    if (this.#outside === 'throw')
      throw new Error(
        "freshgate: a RoutedPool statement was sent outside a request handled by freshgate (outsideRequest: 'throw')",
      );
    return this.#gate.primary;
  }

  // biome-ignore lint/suspicious/noExplicitAny: node-postgres' overloads, forwarded as they come
  override connect(...raw: any[]): any {
    const { callback } = splitCallback(raw);
    const promise = this.#connect();
    if (!callback) return promise;
    promise.then(
      (client) =>
        (callback as (e: null, c: unknown, r: unknown) => void)(
          null,
          client,
          (destroy?: Error | boolean) => client.release(destroy),
        ),
      (error: Error) => (callback as Callback)(error),
    );
    return undefined;
  }

  async #connect(): Promise<PoolClientLike> {
    const db = activeDb();
    if (!db) return this.#outsideRequest().connect();
    return new RoutedClient(db, this.#backend) as unknown as PoolClientLike;
  }

  // biome-ignore lint/suspicious/noExplicitAny: node-postgres' overloads, forwarded as they come
  override query(...raw: any[]): any {
    const { args, callback } = splitCallback(raw);
    return settle(this.#query(args[0], args[1]), callback);
  }

  async #query(input: unknown, values: unknown): Promise<QueryResultLike> {
    const db = activeDb();
    if (!db) {
      const pool = this.#outsideRequest() as unknown as {
        query(...a: unknown[]): Promise<QueryResultLike>;
      };
      // Jobs and start-up statements load the primary too: the budget counts them.
      const start = performance.now();
      let result: QueryResultLike;
      try {
        result = await (values === undefined ? pool.query(input) : pool.query(input, values));
      } catch (error) {
        this.#backend.observePrimary(performance.now() - start, primaryOutcome(error));
        throw error;
      }
      this.#backend.observePrimary(performance.now() - start, 'ok');
      return result;
    }
    // One statement on a pooled connection: the data source refuses what would leave
    // transaction or session state behind on it.
    return db.query(toConfig(input, values));
  }
}
