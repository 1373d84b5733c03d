import {
  type BeginInput,
  ConfigError,
  createEngine,
  type Engine,
  type EngineOptions,
  type RequestFreshness,
  Topology,
  type TopologySnapshot,
} from '@freshgate/core';
import pg from 'pg';
import { type CommitLsnFunction, type DataSourceBackend, FreshDataSource } from './data-source.js';
import { type MonitorOptions, ReplicaMonitor } from './monitor.js';
import type { ClientLike, PoolLike } from './pg-types.js';
import { identityCheckedPool } from './primary-identity.js';

/** Default time a request may wait for a pool connection before it fails. */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000;
/** Default interval between position polls of the `wait` fallback. */
export const DEFAULT_WAIT_POLL_MS = 10;

/** A node given as a pool, a connection string or node-postgres pool options. */
export type NodeInput = PoolLike | string | pg.PoolConfig;

/** A replica with optional tags (e.g. `{ pool: 'reporting' }`). */
export type ReplicaInput = NodeInput | { pool: NodeInput; tags?: Record<string, string> };

/** Options of {@link createFreshgate}. */
export interface FreshgateOptions extends Omit<EngineOptions, 'topology'> {
  /** The primary: a `pg.Pool`, a connection string or pool options. */
  primary: NodeInput;
  /** Named replicas. */
  replicas: Record<string, ReplicaInput>;
  /** Replica monitor settings. */
  monitor?: MonitorOptions;
  /** `statement_timeout` for pools freshgate creates from strings/options (ms). Default: none. */
  statementTimeoutMs?: number;
  /** Pool size for pools freshgate creates. Default: node-postgres' (10). */
  poolSize?: number;
  /** Interval between position polls of the `wait` fallback. Default {@link DEFAULT_WAIT_POLL_MS} (10 ms). */
  waitPollMs?: number;
}

/** What a framework adapter gets for one request. */
export interface FreshRequest {
  freshness: RequestFreshness;
  db: FreshDataSource;
}

/** JSON status for dashboards: the monitor's view plus counters. */
export interface FreshgateStatus extends TopologySnapshot {
  pools: Record<string, { total: number; idle: number; waiting: number }>;
}

function isPool(input: unknown): input is PoolLike {
  return (
    typeof (input as PoolLike)?.connect === 'function' &&
    typeof (input as PoolLike)?.query === 'function'
  );
}

/**
 * freshgate over node-postgres: the engine, the pools, the replica monitor and the
 * request-scoped data source, in one object that the Express and Fastify adapters take.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createFreshgate } from '@freshgate/pg';
 *
 * const freshgate = createFreshgate({
 *   primary: new pg.Pool({ connectionString: process.env.DATABASE_PRIMARY_URL }),
 *   replicas: { r1: process.env.REPLICA_1_URL!, r2: { pool: process.env.REPLICA_2_URL!, tags: { pool: 'reporting' } } },
 *   secret: process.env.FRESHGATE_SECRET!,
 * });
 * await freshgate.start();
 * ```
 */
export class Freshgate {
  readonly engine: Engine;
  readonly topology: Topology;
  readonly monitor: ReplicaMonitor;
  readonly primary: PoolLike;
  readonly replicas: ReadonlyMap<string, PoolLike>;
  readonly #owned: PoolLike[] = [];
  readonly #backend: DataSourceBackend;
  #commitLsnFunction: CommitLsnFunction = 'pg_current_wal_lsn';
  #started: Promise<void> | undefined;
  readonly #contracts;

  /** Use {@link createFreshgate}. */
  constructor(options: FreshgateOptions, topology: Topology, engine: Engine) {
    const { primary, replicas, monitor, statementTimeoutMs, poolSize, waitPollMs, clock } = options;
    const toPool = (input: NodeInput, option: string): PoolLike => {
      if (isPool(input)) return input;
      if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
        throw new ConfigError(option, 'expected a pg.Pool, a connection string or pool options');
      }
      const config: pg.PoolConfig =
        typeof input === 'string' ? { connectionString: input } : { ...input };
      config.connectionTimeoutMillis ??= DEFAULT_CONNECTION_TIMEOUT_MS;
      if (statementTimeoutMs !== undefined) config.statement_timeout ??= statementTimeoutMs;
      if (poolSize !== undefined) config.max ??= poolSize;
      const pool = new pg.Pool(config) as unknown as PoolLike;
      // An idle client's error (server restart) must not crash the process; the monitor sees it.
      pool.on?.('error', () => {});
      this.#owned.push(pool);
      return pool;
    };
    this.primary = toPool(primary, 'primary');
    const replicaPools = new Map<string, PoolLike>();
    for (const [name, input] of Object.entries(replicas)) {
      replicaPools.set(name, toPool(replicaSpec(input).pool, `replicas.${name}`));
    }
    this.replicas = replicaPools;
    this.topology = topology;
    this.engine = engine;
    this.#contracts = {
      strong: this.engine.contract('strong'),
      eventual: this.engine.contract('eventual'),
    };

    const connector = (pool: PoolLike) => async () => {
      // The monitor uses its own connection, opened with the pool's settings, so that a
      // saturated pool cannot make a healthy node look down.
      const client = new pg.Client(pool.options as pg.ClientConfig) as unknown as ClientLike;
      client.on('error', () => {});
      await client.connect();
      return client;
    };
    this.monitor = new ReplicaMonitor(
      this.topology,
      {
        primary: connector(this.primary),
        replicas: Object.fromEntries(
          [...replicaPools].map(([name, pool]) => [name, connector(pool)]),
        ),
      },
      { clock, ...monitor },
    );
    this.#backend = {
      topology: this.topology,
      primary: identityCheckedPool(this.primary, this.topology, () =>
        this.monitor.pollNow(this.topology.primary.name, { force: true }),
      ),
      replicas: this.replicas,
      commitLsnFunction: () => this.#commitLsnFunction,
      reportFailure: (name) => {
        // The primary is never taken out by the data source: only its monitor judges it.
        if (name !== this.topology.primary.name)
          this.topology.updateReplica(name, { health: 'down' });
        void this.monitor.pollNow(name);
      },
      waitPollMs: waitPollMs ?? DEFAULT_WAIT_POLL_MS,
    };
  }

  /** The function that reads commit LSNs (`pg_current_wal_lsn`, or the insert position when `synchronous_commit` is off). */
  get commitLsnFunction(): CommitLsnFunction {
    return this.#commitLsnFunction;
  }

  /**
   * Reads `synchronous_commit` on the primary, starts the monitor and waits for its first
   * poll of every node. Idempotent.
   */
  start(): Promise<void> {
    this.#started ??= (async () => {
      const { rows } = await this.primary.query('SHOW synchronous_commit');
      // With synchronous_commit off, COMMIT returns before its record is written: the write
      // position can trail the commit, the insert position cannot.
      if (rows[0]?.synchronous_commit === 'off') {
        this.#commitLsnFunction = 'pg_current_wal_insert_lsn';
        this.monitor.setHeartbeat(1_000);
      }
      this.monitor.start();
      await this.monitor.ready();
    })();
    return this.#started;
  }

  /** Starts one request: verifies the token, reads the pin, creates the lazy data source. */
  /**
   * Starts one request. Like the engine's `begin`, synchronous when there is nothing to wait
   * for (no token or an already verified one, no pin to read); `await` works either way.
   */
  begin(input?: BeginInput): FreshRequest | Promise<FreshRequest> {
    const freshness = this.engine.begin(input);
    return freshness instanceof Promise
      ? freshness.then((f) => this.#request(f))
      : this.#request(freshness);
  }

  #request(freshness: RequestFreshness): FreshRequest {
    return { freshness, db: new FreshDataSource(this.#backend, freshness, this.#contracts) };
  }

  /** The monitor's view and pool counters, for status pages. */
  status(): FreshgateStatus {
    const pools: FreshgateStatus['pools'] = {
      primary: {
        total: this.primary.totalCount,
        idle: this.primary.idleCount,
        waiting: this.primary.waitingCount,
      },
    };
    for (const [name, pool] of this.replicas) {
      pools[name] = { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    }
    return { ...this.topology.snapshot(), pools };
  }

  /** Stops the monitor and ends the pools freshgate created (the caller's pools are left open). */
  async close(): Promise<void> {
    await this.monitor.close();
    await Promise.all(this.#owned.map((pool) => pool.end().catch(() => {})));
  }
}

function replicaSpec(input: ReplicaInput): { pool: NodeInput; tags?: Record<string, string> } {
  return typeof input === 'object' && input !== null && 'pool' in input && !isPool(input)
    ? input
    : { pool: input as NodeInput };
}

/**
 * Creates a {@link Freshgate}: validates the options, builds the engine (keys are imported
 * once, here) and the pools. Call `start()` before serving requests.
 */
export async function createFreshgate(options: FreshgateOptions): Promise<Freshgate> {
  if (!options || typeof options !== 'object') {
    throw new ConfigError('options', 'pass { primary, replicas, secret }');
  }
  const { primary, replicas, monitor, statementTimeoutMs, poolSize, waitPollMs, ...engineOptions } =
    options;
  if (primary === undefined || primary === null) {
    throw new ConfigError(
      'primary',
      'give the primary as a pg.Pool, a connection string or pool options',
    );
  }
  if (!replicas || typeof replicas !== 'object') {
    throw new ConfigError(
      'replicas',
      'give named replicas, e.g. { r1: "postgres://…" } ({} for none)',
    );
  }
  const topology = new Topology({
    replicas: Object.entries(replicas).map(([name, input]) => ({
      name,
      tags: replicaSpec(input).tags,
    })),
    clock: engineOptions.clock,
  });
  const engine = await createEngine({ ...engineOptions, topology });
  return new Freshgate(options, topology, engine);
}
