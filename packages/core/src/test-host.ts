import { AsyncLocalStorage } from 'node:async_hooks';
import type { FreshgateHost, StartedRequest } from './adapter-kit.js';
import { createEngine, type Engine, type EngineOptions } from './engine.js';
import type { RequestFreshness } from './request-freshness.js';
import { Topology } from './topology.js';

/** The data source of a {@link TestHost}: no database, only the request's freshness state. */
export interface TestDb {
  readonly freshness: RequestFreshness;
}

/** A {@link FreshgateHost} without a database, for adapter unit tests. */
export interface TestHost extends FreshgateHost<TestDb> {
  readonly engine: Engine;
  readonly topology: Topology;
  /** The data source the adapter made current (`run`) in this async context, if any. */
  current(): TestDb | undefined;
}

/**
 * A started freshgate host over an in-memory topology (a healthy primary with a cluster id and
 * no replicas): what an adapter's unit tests need to start requests, issue tokens and answer
 * errors without PostgreSQL. Routing over real replicas belongs in integration tests.
 *
 * @example
 * ```ts
 * const host = await createTestHost({ strict: true });
 * app.use(freshgate(host as never));
 * // in a handler: expect(host.current()).toBe(req.db);
 * ```
 */
export async function createTestHost(
  options: Partial<Omit<EngineOptions, 'topology'>> = {},
): Promise<TestHost> {
  const topology = new Topology({ clock: options.clock });
  topology.updatePrimary({ currentLsn: 1n, clusterId: 'test/1', health: 'healthy' });
  const engine = await createEngine({
    secret: 'freshgate-test-host-secret-0123456789',
    ...options,
    topology,
  });
  const storage = new AsyncLocalStorage<TestDb>();
  const started = (freshness: RequestFreshness): StartedRequest<TestDb> => {
    const db: TestDb = { freshness };
    return { freshness, db, run: (fn) => storage.run(db, fn) };
  };
  return {
    engine,
    topology,
    current: () => storage.getStore(),
    begin(input) {
      const freshness = engine.begin(input);
      return freshness instanceof Promise ? freshness.then(started) : started(freshness);
    },
  };
}
