import {
  type BudgetStatus,
  ConfigError,
  type Duration,
  type EngineOptions,
  NotStartedError,
  parseLsn,
  type ReadCount,
  type RequestFreshness,
  type TopologySnapshot,
} from '@freshgate/core';
import {
  type BeginInput,
  checkOptions,
  createEngine,
  ENGINE_OPTIONS,
  type Engine,
  parseDuration,
  type StartedRequest,
  systemClock,
  Topology,
  withTimeout,
} from '@freshgate/core/adapter';
import pg from 'pg';
import { isConnectionError } from './connection-errors.js';
import { contextSkipped, runWithDb } from './current-db.js';
import {
  type CommitLsnFunction,
  type DataSourceBackend,
  FreshDataSource,
  guardClient,
} from './data-source.js';
import { HotStandbyClient } from './hot-standby.js';
import { DEFAULT_MONITOR_TIMEOUT, type MonitorOptions, ReplicaMonitor } from './monitor.js';
import type { ClientLike, PoolConfigLike, PoolLike } from './pg-types.js';
import { identityCheckedPool } from './primary-identity.js';
import { PrimaryPosition } from './primary-position.js';
import { type ProbeOptions, type ProbeReplicaStatus, ReplicaProbe } from './probe.js';
import { ReplayWaits } from './replay-waits.js';
import { SharedRead } from './shared-read.js';

/** Default time a request may wait for a pool connection before it fails. */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000;
/** Default interval between position polls of the `wait` fallback. */
export const DEFAULT_WAIT_POLL_INTERVAL: Duration = '10ms';

const OPTIONS = [
  ...ENGINE_OPTIONS.filter((key) => key !== 'topology'),
  'primary',
  'replicas',
  'monitor',
  'statementTimeout',
  'poolSize',
  'waitPollInterval',
  'probe',
  'asyncContext',
];

/** A node given as a pool, a connection string or node-postgres pool options. */
export type NodeInput = PoolLike | string | PoolConfigLike;

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
  /** `statement_timeout` for pools freshgate creates from strings/options. Default: none. */
  statementTimeout?: Duration;
  /** Pool size for pools freshgate creates. Default: node-postgres' (10). */
  poolSize?: number;
  /** Interval between position polls of the `wait` fallback. Default `'10ms'`. */
  waitPollInterval?: Duration;
  /**
   * The synthetic read-after-write probe: `true` or `{ interval?, timeout?, table?, health? }`
   * to write one row every `interval` (default 10 s) and time how long each replica takes to
   * show it (`status().probe`, the `freshgate.probe.delay` histogram). Default: off. See
   * {@link ProbeOptions} for what it costs and needs.
   */
  probe?: boolean | ProbeOptions;
  /**
   * Runs each request inside AsyncLocalStorage, where {@link currentDb}, `RoutedPool` (the ORM
   * integrations) and `db.query` inside `db.transaction(fn)` find it. `false`: only the request's
   * own data source (`req.db`, `request.db`, `@FreshDb()`) and a transaction's `tx`; saves the
   * context's cost, which on Node.js 20 and 22 falls on every promise the process makes once any
   * AsyncLocalStorage is in use. `currentDb()` then throws and `new RoutedPool(gate)` refuses
   * the gate. Default `true`.
   */
  asyncContext?: boolean;
}

/** What a framework adapter gets for one request. */
export interface FreshRequest extends StartedRequest<FreshDataSource> {
  readonly freshness: RequestFreshness;
  readonly db: FreshDataSource;
  /** Runs `fn` with {@link db} as {@link currentDb} (with `asyncContext: false`, only runs it). */
  run<T>(fn: () => T): T;
}

/** JSON status for dashboards: the monitor's view plus counters. */
export interface FreshgateStatus extends TopologySnapshot {
  /** Connections of every pool. */
  pools: Record<string, { total: number; idle: number; waiting: number }>;
  /**
   * Reads since start-up per contract, route (`primary` or `replica:<name>`) and reason
   * (`replica-fresh`, `no-replica`, `strong`, ...).
   */
  reads: ReadCount[];
  /**
   * The primary fallback budget: its mode (`adaptive`, `fixed`, `off`), limit (fallbacks per
   * second), fallbacks admitted and shed by priority, and what the adaptive limit measured
   * (`baselineMs`, `latencyMs`, `loopDelayMs`, `lastChange`).
   */
  budget: BudgetStatus;
  /** What the read-after-write probe last measured per replica; `null` when it is off. */
  probe: Record<string, ProbeReplicaStatus> | null;
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
 * const gate = await createFreshgate({
 *   primary: new pg.Pool({ connectionString: process.env.DATABASE_PRIMARY_URL }),
 *   replicas: { r1: process.env.REPLICA_1_URL!, r2: { pool: process.env.REPLICA_2_URL!, tags: { pool: 'reporting' } } },
 *   secret: process.env.FRESHGATE_SECRET!,
 * });
 * await gate.start();
 * app.use(freshgate(gate)); // @freshgate/express
 * ```
 */
export class Freshgate {
  /** The core engine: `defaultContract`, `contract()`, `codec`, `reads()`. */
  readonly engine: Engine;
  /** The replica-state model; `topology.on(listener)` reports health and circuit changes. */
  readonly topology: Topology;
  /** The replica monitor (`quarantineReason(name)`, `pollNow(name)`). */
  readonly monitor: ReplicaMonitor;
  /** The primary's pool. */
  readonly primary: PoolLike;
  /** The replicas' pools, by name. */
  readonly replicas: ReadonlyMap<string, PoolLike>;
  /** The synthetic read-after-write probe, `null` unless the `probe` option is set. */
  readonly probe: ReplicaProbe | null;
  /** Requests run inside AsyncLocalStorage (the `asyncContext` option). */
  readonly asyncContext: boolean;
  readonly #owned: PoolLike[] = [];
  readonly #backend: DataSourceBackend;
  #commitLsnFunction: CommitLsnFunction = 'pg_current_wal_lsn';
  #started: Promise<void> | undefined;
  #ready = false;
  #barrierClient: Promise<ClientLike> | undefined;
  #closed = false;
  readonly #replayWaits: ReplayWaits;
  readonly #contracts;
  readonly #barrierTimeoutMs: number;
  /** The class of this gate's started requests: its `run` enters the context or not. */
  readonly #Started: typeof Started;

  /** Use {@link createFreshgate}. */
  constructor(options: FreshgateOptions, topology: Topology, engine: Engine) {
    const { primary, replicas, monitor, poolSize, clock } = options;
    const statementTimeoutMs =
      options.statementTimeout === undefined
        ? undefined
        : parseDuration(options.statementTimeout, 'statementTimeout');
    const waitPollMs = parseDuration(
      options.waitPollInterval ?? DEFAULT_WAIT_POLL_INTERVAL,
      'waitPollInterval',
    );
    if (waitPollMs < 1) throw new ConfigError('waitPollInterval', 'must be greater than 0');
    const asyncContext = options.asyncContext ?? true;
    if (typeof asyncContext !== 'boolean') {
      throw new ConfigError('asyncContext', `expected true or false, got ${String(asyncContext)}`);
    }
    this.asyncContext = asyncContext;
    this.#Started = asyncContext ? Started : StartedOutsideContext;
    if (!asyncContext) contextSkipped();
    const toPool = (input: NodeInput, option: string): PoolLike => {
      if (isPool(input)) {
        input.on?.('connect', guardClient);
        return input;
      }
      if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
        throw new ConfigError(option, 'expected a pg.Pool, a connection string or pool options');
      }
      const config: PoolConfigLike =
        typeof input === 'string' ? { connectionString: input } : { ...input };
      config.connectionTimeoutMillis ??= DEFAULT_CONNECTION_TIMEOUT_MS;
      if (statementTimeoutMs !== undefined) config.statement_timeout ??= statementTimeoutMs;
      if (poolSize !== undefined) config.max ??= poolSize;
      // Its clients follow `in_hot_standby` from their start (see hot-standby.ts).
      const pool = new pg.Pool({
        Client: HotStandbyClient,
        ...(config as pg.PoolConfig),
      }) as unknown as PoolLike;
      // An idle client's error (server restart) must not crash the process; the monitor sees it.
      pool.on?.('error', () => {});
      pool.on?.('connect', guardClient);
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
    this.#barrierTimeoutMs = parseDuration(
      monitor?.timeout ?? DEFAULT_MONITOR_TIMEOUT,
      'monitor.timeout',
    );
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
    const connectPrimary = connector(this.primary);
    this.monitor = new ReplicaMonitor(
      this.topology,
      {
        primary: connectPrimary,
        replicas: Object.fromEntries(
          [...replicaPools].map(([name, pool]) => [name, connector(pool)]),
        ),
      },
      { clock, ...monitor },
    );
    this.probe =
      options.probe === undefined || options.probe === false
        ? null
        : new ReplicaProbe(options.probe, this.primary, this.replicas, (name, ms) =>
            this.engine.recordProbe(name, ms),
          );
    if (this.probe?.health) {
      const probe = this.probe;
      this.monitor.setLagFloor((name) => probe.pendingMs(name));
    }
    const time = clock ?? systemClock;
    const position = new PrimaryPosition(
      (sql) => this.#barrierQuery(sql, connectPrimary),
      time,
      () => this.monitor.primarySample(),
    );
    const reportFailure = (name: string) => {
      // The primary is never taken out by the data source: only its monitor judges it.
      if (name !== this.topology.primary.name)
        this.topology.updateReplica(name, { health: 'down' });
      void this.monitor.pollNow(name);
    };
    const replayLsn = async (name: string): Promise<bigint | undefined> => {
      const pool = this.replicas.get(name);
      if (!pool) return undefined;
      try {
        const { rows } = await pool.query('SELECT pg_last_wal_replay_lsn()::text AS lsn');
        const text = rows[0]?.lsn as string | undefined;
        if (!text) return undefined;
        const lsn = parseLsn(text);
        this.topology.observeReplayLsn(name, lsn);
        return lsn;
      } catch (error) {
        if (isConnectionError(error)) reportFailure(name);
        return undefined;
      }
    };
    // Checks and waits on one replica share its position reads: each needs one sent after
    // its decision, and a read queued behind the one in flight serves all that arrive meanwhile.
    const replayReads = new Map(
      [...this.replicas.keys()].map((name) => [name, new SharedRead(() => replayLsn(name), time)]),
    );
    const replayLsnAfter = (name: string): Promise<bigint | undefined> =>
      replayReads.get(name)?.after(time.now()).value ?? Promise.resolve(undefined);
    const replayWaits = new ReplayWaits(replayLsnAfter, waitPollMs);
    this.#replayWaits = replayWaits;
    this.#backend = {
      asyncContext,
      topology: this.topology,
      primaryPositionAfter: (since) => position.after(since),
      primary: identityCheckedPool(this.primary, this.topology, () =>
        this.monitor.pollNow(this.topology.primary.name, { force: true }),
      ),
      replicas: this.replicas,
      commitLsnFunction: () => this.#commitLsnFunction,
      reportFailure,
      observePrimary: (latencyMs, outcome) =>
        this.engine.observePrimary(latencyMs, outcome, this.primary.waitingCount),
      replayLsn: replayLsnAfter,
      waitForReplay: (name, lsn, timeoutMs) => replayWaits.wait(name, lsn, timeoutMs),
    };
  }

  /**
   * One statement on the barrier connection (opened on first use, reopened after a failure),
   * bounded by the monitor's poll timeout so that a hung primary cannot hang requests.
   */
  async #barrierQuery(
    sql: string,
    connect: () => Promise<ClientLike>,
  ): Promise<{ rows: Record<string, unknown>[] }> {
    if (this.#closed) throw new Error('freshgate: closed');
    this.#barrierClient ??= connect();
    const connecting = this.#barrierClient;
    // One deadline for connecting and querying, as the monitor's polls have.
    const deadline = performance.now() + this.#barrierTimeoutMs;
    const bounded = <T>(promise: Promise<T>) =>
      withTimeout(
        promise,
        Math.max(0, deadline - performance.now()),
        () => new Error('freshgate: primary position timed out'),
      );
    try {
      const client = await bounded(connecting);
      return await bounded(client.query(sql));
    } catch (error) {
      if (this.#barrierClient === connecting) this.#barrierClient = undefined;
      connecting.then(
        (client) => client.end().catch(() => {}),
        () => {},
      );
      throw error;
    }
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
      this.engine.start();
      const { rows } = await this.primary.query('SHOW synchronous_commit');
      // With synchronous_commit off, COMMIT returns before its record is written: the write
      // position can trail the commit, the insert position cannot.
      if (rows[0]?.synchronous_commit === 'off') {
        this.#commitLsnFunction = 'pg_current_wal_insert_lsn';
        this.monitor.setHeartbeat(1_000);
      }
      this.monitor.start();
      await this.monitor.ready();
      this.probe?.start();
      this.#ready = true;
    })();
    return this.#started;
  }

  /**
   * Starts one request: verifies the token, reads the pin, creates the lazy data source. Like
   * the engine's `begin`, synchronous when there is nothing to wait for (no token or an
   * already verified one, no pin to read); `await` works either way. Adapters call it.
   *
   * @throws {NotStartedError} before `await gate.start()` has
   *   resolved: without the monitor's first poll no token can be issued and no replica is known.
   */
  begin(input?: BeginInput): FreshRequest | Promise<FreshRequest> {
    if (!this.#ready) {
      throw new NotStartedError(this.#started !== undefined);
    }
    const freshness = this.engine.begin(input);
    return freshness instanceof Promise
      ? freshness.then((f) => this.#request(f))
      : this.#request(freshness);
  }

  #request(freshness: RequestFreshness): FreshRequest {
    return new this.#Started(
      freshness,
      new FreshDataSource(this.#backend, freshness, this.#contracts),
    );
  }

  /** The monitor's view, pool and read counters, and the primary budget, for status pages. */
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
    return {
      ...this.topology.snapshot(),
      pools,
      reads: this.engine.reads(),
      budget: this.engine.budgetStatus(),
      probe: this.probe?.status() ?? null,
    };
  }

  /** Stops the monitor and ends the pools freshgate created (the caller's pools are left open). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#replayWaits.close();
    this.engine.close();
    await this.probe?.stop();
    const barrier = this.#barrierClient;
    this.#barrierClient = undefined;
    await barrier?.then(
      (client) => client.end().catch(() => {}),
      () => {},
    );
    await this.monitor.close();
    await Promise.all(this.#owned.map((pool) => pool.end().catch(() => {})));
  }
}

/** One started request: an object of its own, with no closure per request. */
class Started implements FreshRequest {
  readonly freshness: RequestFreshness;
  readonly db: FreshDataSource;

  constructor(freshness: RequestFreshness, db: FreshDataSource) {
    this.freshness = freshness;
    this.db = db;
  }

  run<T>(fn: () => T): T {
    return runWithDb(this.db, fn);
  }
}

/** A started request of a gate created with `asyncContext: false`: `run` only calls `fn`. */
class StartedOutsideContext extends Started {
  override run<T>(fn: () => T): T {
    return fn();
  }
}

function replicaSpec(input: ReplicaInput): { pool: NodeInput; tags?: Record<string, string> } {
  return typeof input === 'object' && input !== null && 'pool' in input && !isPool(input)
    ? input
    : { pool: input as NodeInput };
}

/**
 * Creates a {@link Freshgate}: validates every option (a typo or a bad value throws a
 * `ConfigError` naming it, e.g. `monitor.interval`), builds the engine (keys are imported
 * once, here) and the pools. `await gate.start()` before serving requests: until it resolves,
 * `begin()` throws a `NotStartedError`.
 *
 * @example
 * ```ts
 * const gate = await createFreshgate({
 *   primary: process.env.DATABASE_PRIMARY_URL!,
 *   replicas: { r1: process.env.REPLICA_1_URL! },
 *   secret: process.env.FRESHGATE_SECRET!,
 *   monitor: { interval: '100ms', health: { exitLag: '2s' } },
 *   token: { ttl: '10m' },
 * });
 * await gate.start();
 * ```
 */
export async function createFreshgate(options: FreshgateOptions): Promise<Freshgate> {
  if (!options || typeof options !== 'object') {
    throw new ConfigError('options', 'pass { primary, replicas, secret }');
  }
  checkOptions(options, OPTIONS, 'options');
  const {
    primary,
    replicas,
    monitor,
    statementTimeout,
    poolSize,
    waitPollInterval,
    probe,
    asyncContext,
    ...engineOptions
  } = options;
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
