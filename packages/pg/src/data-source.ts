import {
  type BarrierSource,
  ConfigError,
  type Contract,
  type ContractInput,
  type Decision,
  defineContract,
  FreshgateError,
  FreshnessUnavailableError,
  NodeUnavailableError,
  PoolExhaustedError,
  parseLsn,
  type RequestFreshness,
  StatementTimeoutError,
  TransactionAbortedError,
  UnsafeStatementError,
} from '@freshgate/core';
import type { PrimaryOutcome, Topology } from '@freshgate/core/adapter';
import { isConnectionError, isNodeFailure, toNodeError } from './connection-errors.js';
import { activeTransaction, runInTransaction, type TransactionScope } from './current-db.js';
import { followHotStandby, hotStandby, learnedHotStandby } from './hot-standby.js';
import type { PoolClientLike, PoolLike, QueryResultLike } from './pg-types.js';
import { unsafeStatement } from './session-statement.js';
import { statementKind } from './statement-kind.js';

/** How the commit LSN is read after a commit; chosen at start-up from `synchronous_commit`. */
export type CommitLsnFunction = 'pg_current_wal_lsn' | 'pg_current_wal_insert_lsn';

/**
 * A query in node-postgres' two call shapes. A config object's other fields (`rowMode`,
 * `types`, `name`, as ORMs send them) reach the driver unchanged.
 */
export type QueryInput = string | QueryConfigInput;

/** node-postgres' `QueryConfig`: the parts freshgate reads, plus whatever the driver takes. */
export interface QueryConfigInput {
  text: string;
  values?: unknown[];
  rowMode?: 'array';
  types?: unknown;
  name?: string;
}

/** Something that runs queries: the data source, its `primary()` view, or a transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<QueryResultLike<R>>;
  query<R = Record<string, unknown>>(
    config: QueryConfigInput,
    values?: unknown[],
  ): Promise<QueryResultLike<R>>;
}

/** What the data source needs from the cluster. Internal. */
export interface DataSourceBackend {
  /** Requests and transactions run inside AsyncLocalStorage (the gate's `asyncContext`). */
  asyncContext: boolean;
  topology: Topology;
  primary: PoolLike;
  replicas: ReadonlyMap<string, PoolLike>;
  commitLsnFunction: () => CommitLsnFunction;
  /** The primary's position read by a statement sent at or after `since` (barrier reads). */
  primaryPositionAfter(since: number): Promise<{ lsn: bigint; source: BarrierSource }>;
  /** Tells the monitor a node failed outside its polls. */
  reportFailure(name: string): void;
  /** Reports one statement run on the primary to the primary budget (see `engine.observePrimary`). */
  observePrimary(latencyMs: number, outcome: PrimaryOutcome): void;
  /**
   * The replica's replay position, read by a statement sent now or later (shared by the
   * requests that ask meanwhile); `undefined` if it cannot be read.
   */
  replayLsn(name: string): Promise<bigint | undefined>;
  /**
   * Resolves once replica `name` has replayed `lsn`, a read of its position failed, or
   * `timeoutMs` passed; the requests waiting on one replica share its position reads.
   */
  waitForReplay(name: string, lsn: bigint, timeoutMs: number): Promise<void>;
}

/** `Retry-After` of a fallback that found no slot: the cap frees within its 100 ms wait. */
const SHED_RETRY_AFTER_SECONDS = 1;

// node-postgres' pool rejects with this message when a caller waited connectionTimeoutMillis
// in its queue: every connection is busy. The node is fine (a connection that cannot be
// opened in time fails with "Connection terminated due to connection timeout" instead), so
// this must not take a replica out of rotation.
const POOL_QUEUE_TIMEOUT = /timeout exceeded when trying to connect/i;

/**
 * How a statement on the primary ended, for the primary budget: the server answering with the
 * statement's own error (a constraint, a syntax error, a serialization failure) is `ok`; only
 * what says the node is failing or overloaded is not. Internal: also used by the routed client.
 */
export function primaryOutcome(error: unknown): PrimaryOutcome {
  const code = (error as { code?: unknown })?.code;
  if (
    code === QUERY_CANCELED ||
    POOL_QUEUE_TIMEOUT.test((error as Error)?.message ?? '') ||
    // node-postgres' own `query_timeout`.
    /Query read timeout/.test((error as Error)?.message ?? '')
  )
    return 'timeout';
  // Class 53: insufficient resources (too many connections, out of memory, disk full).
  if (isConnectionError(error) || (typeof code === 'string' && code.startsWith('53')))
    return 'error';
  return 'ok';
}

/**
 * `pool.connect()`, with a queue timeout turned into a 503 that names the node and an `error`
 * listener on the checked-out client. A failure is reported to `observe` (the primary
 * budget's, for the primary pool): no connection in time is a timeout, anything else an
 * error. Internal: also used by the routed client.
 */
export function acquire(
  pool: PoolLike,
  node: string,
  observe?: (latencyMs: number, outcome: PrimaryOutcome) => void,
): Promise<PoolClientLike> {
  // A chain rather than an async function: a statement waiting for a connection holds one
  // promise, not a suspended function as well.
  return connect(pool).then(guardedClient, (error: unknown) => {
    throw notAcquired(error, node, observe);
  });
}

/** `pool.connect()`, rejecting instead of throwing. */
function connect(pool: PoolLike): Promise<PoolClientLike> {
  try {
    return pool.connect();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * `pool.connect(callback)`, or `client.query(...statement, callback)` as {@link send} passes the
 * statement, in node-postgres' callback form, which makes no promise. A method that only
 * returns a promise is followed through it; `done` is called once either way.
 */
function callBack<T>(
  target: object,
  method: (...args: never[]) => unknown,
  q: Statement | undefined,
  done: (error: unknown, value: T | undefined) => void,
): void {
  let called = false;
  const once = (error: unknown, value?: T) => {
    if (called) return;
    called = true;
    done(error, value);
  };
  const call = method as (...args: unknown[]) => unknown;
  let returned: unknown;
  try {
    if (q === undefined) returned = call.call(target, once);
    else if (q.config === undefined) returned = call.call(target, q.text, q.values, once);
    else returned = call.call(target, q.config, once);
  } catch (error) {
    once(error);
    return;
  }
  if (isThenable(returned)) {
    returned.then(
      (value) => once(undefined, value as T),
      (error: unknown) => once(error ?? new Error('node-postgres call failed')),
    );
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** What `pool.connect()` failing means for a statement: reported to `observe`, then the error. */
function notAcquired(
  error: unknown,
  node: string,
  observe?: (latencyMs: number, outcome: PrimaryOutcome) => void,
): unknown {
  const outcome = primaryOutcome(error);
  observe?.(0, outcome === 'ok' ? 'error' : outcome);
  if (POOL_QUEUE_TIMEOUT.test((error as Error)?.message ?? ''))
    return new PoolExhaustedError(node, { cause: error });
  // Whatever else kept the pool from giving a connection (refused, reset, authentication,
  // a server starting or shutting down), the statement never ran: 503, never a bare 500.
  return error instanceof FreshgateError ? error : new NodeUnavailableError(node, { cause: error });
}

function guardedClient(client: PoolClientLike): PoolClientLike {
  guardClient(client);
  return client;
}

/**
 * Gives a pool's client an `error` listener for as long as it lives. node-postgres' pool
 * listens for errors of idle connections only: a server that dies while a connection is
 * checked out makes the client emit 'error', which would crash the process without a listener
 * (the statement itself still rejects, so nothing is lost). The pool's `connect` event is the
 * only safe moment for a new client: the message that completes its start-up can share one
 * socket read with a `FATAL` the server sends next (a shutdown, a recovery conflict), and that
 * error is emitted before `pool.connect()`'s caller runs. Internal: the cluster registers it
 * on every pool; `acquire()` covers clients a pool made before.
 */
export function guardClient(client: PoolClientLike): void {
  if (!guarded.has(client) && typeof client.on === 'function') {
    guarded.add(client);
    client.on('error', ignoreError);
    followHotStandby(client);
  }
}

const guarded = new WeakSet<PoolClientLike>();
const ignoreError = () => {};

/**
 * An upper bound of what a read on a replica saw, and whether the node is still one. A replica
 * promoted since the monitor last looked has left recovery: its replay position stopped where
 * recovery ended while commits may go on after it, on a timeline the engine does not know
 * yet. No position it gives can bound the read in the cluster the session's token names, so
 * its answer is not used (see {@link NotAReplica}).
 */
const READ_BOUND_ON_REPLICA =
  "SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS lsn, current_setting('in_hot_standby', true) AS hot";

/** A replica that answered as a primary (promoted): the read is taken elsewhere. */
class NotAReplica extends Error {}

/** SQLSTATE 57014: the statement was cancelled (statement_timeout). */
const QUERY_CANCELED = '57014';
/** SQLSTATE 40001 on a standby: "canceling statement due to conflict with recovery". */
const RECOVERY_CONFLICT = '40001';

/**
 * One statement: its text and values, and for a config object the whole config (its values
 * replaced by those given beside it, as in node-postgres).
 */
interface Statement {
  readonly text: string;
  readonly values: unknown[] | undefined;
  readonly config: QueryConfigInput | undefined;
}

function normalize(input: QueryInput, values?: unknown[]): Statement {
  if (typeof input === 'string') return { text: input, values, config: undefined };
  const merged = values ?? input.values;
  return { text: input.text, values: merged, config: { ...input, values: merged } };
}

/**
 * Sends `q` on `client`. Text and values go as two arguments: node-postgres copies a config
 * object it is given (8.23.1 and later, through property descriptors: about 2 µs per statement).
 */
function send(client: PoolClientLike, q: Statement): Promise<QueryResultLike> {
  return q.config === undefined ? client.query(q.text, q.values) : client.query(q.config);
}

/** Decisions one read may take (barriers, checks, waits, failed replicas) before a 503. */
const READ_ATTEMPTS = 12;

/**
 * The request-scoped data source (`req.db`). Reads are routed by the request's freshness
 * state; writes, locking reads and transactions go to the primary, and after a write every
 * statement of the request does. All replica reads of one request use one replica. A
 * connection is held only while a statement or transaction runs.
 *
 * @example
 * ```ts
 * const { rows } = await req.db.query('SELECT * FROM cases WHERE id = $1', [id]);
 * await req.db.query('UPDATE cases SET status = $1 WHERE id = $2', ['closed', id]); // token set
 * await req.db.transaction(async (tx) => { await tx.query('INSERT …'); });
 * const check = await req.db.primary().query('SELECT allowed FROM permissions WHERE …');
 * ```
 */
export class FreshDataSource implements Queryable {
  readonly freshness: RequestFreshness;
  readonly #backend: DataSourceBackend;
  readonly #strong: Contract | undefined;
  readonly #eventual: Contract | undefined;
  /**
   * The transaction of a gate without async context (`asyncContext: false`): while it is open,
   * statements go through its `tx` only (nothing tells `fn`'s statements from the others).
   */
  #transaction: TransactionScope | undefined;

  /** @internal Data sources come from `Freshgate.begin()` (the framework adapters call it). */
  constructor(
    backend: DataSourceBackend,
    freshness: RequestFreshness,
    contracts: { strong: Contract; eventual: Contract },
  ) {
    this.#backend = backend;
    this.freshness = freshness;
    this.#strong = contracts.strong;
    this.#eventual = contracts.eventual;
  }

  /** Runs one statement where its kind and the request's contract send it. */
  query<R = Record<string, unknown>>(
    input: QueryInput,
    values?: unknown[],
  ): Promise<QueryResultLike<R>> {
    // Not an async function: one promise less per statement. A statement refused before it
    // is sent still rejects rather than throws.
    try {
      return this.#run(normalize(input, values), undefined) as Promise<QueryResultLike<R>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A view whose every statement goes to the primary (reads under `strong`). */
  primary(): Queryable {
    return this.#view(this.#strong);
  }

  /** A view whose reads accept any healthy replica (`eventual`); writes still go to the primary. */
  replica(): Queryable {
    return this.#view(this.#eventual);
  }

  /**
   * A view whose reads use `contract` instead of the route's (validated now: a typo throws a
   * `ConfigError`). Writes still go to the primary.
   *
   * @example
   * ```ts
   * await db.withContract('strong').query('SELECT role FROM members WHERE user_id = $1', [id]);
   * await db.withContract({ maxLag: '2s' }).query('SELECT count(*) FROM cases');
   * ```
   */
  withContract(contract: ContractInput | Contract): Queryable {
    return this.#view(defineContract(contract, 'withContract()'));
  }

  /**
   * Runs `fn` in a transaction on the primary, on one connection. While `fn` runs, every
   * statement of this data source sent from `fn`'s async context — `tx.query`, `db.query`,
   * the `primary()`/`replica()`/`withContract()` views and {@link currentDb} — joins the
   * transaction. COMMIT and the commit-LSN read go to the server as one message; the
   * returned promise resolves after the token is set. If a statement failed and `fn` caught
   * its error, PostgreSQL rolls back at COMMIT: then it rejects with
   * `TransactionAbortedError` and no token is issued.
   *
   * On a gate created with `asyncContext: false` only `tx` joins the transaction: until `fn`
   * settles, this data source's other statements (and a second `transaction()`) reject.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // A nested transaction() would BEGIN again on the same connection (a warning, then the
    // inner COMMIT would end the outer transaction): savepoints say what is meant.
    if (this.#scope() || this.#transaction?.open) throw new UnsafeStatementError('BEGIN', true);
    const inContext = this.#backend.asyncContext;
    // Writes and transactions are not routing decisions (they always run on the primary):
    // `wrote()` sets the route header and the token once the commit LSN is known.
    const observe = this.#backend.observePrimary;
    const client = await acquire(this.#backend.primary, 'primary', observe);
    const scope: TransactionScope = { db: this, client, open: true };
    if (!inContext) this.#transaction = scope;
    let broken: Error | undefined;
    try {
      let start = performance.now();
      try {
        await client.query('BEGIN');
      } catch (error) {
        observe(performance.now() - start, primaryOutcome(error));
        throw error;
      }
      observe(performance.now() - start, 'ok');
      const tx: Queryable = {
        query: (async (input: QueryInput, values?: unknown[]) =>
          this.#inTransaction(scope, normalize(input, values))) as Queryable['query'],
      };
      let result: T;
      try {
        // Which transaction the async context runs in is scoped to `fn`'s async context rather
        // than stored on the data source, so that a statement the request sends concurrently
        // from outside `fn` keeps its own connection instead of being committed or rolled back
        // with it.
        result = await (inContext ? runInTransaction(scope, () => fn(tx)) : fn(tx));
      } catch (error) {
        scope.open = false;
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
        throw error;
      }
      scope.open = false;
      // One simple-query message: COMMIT ends the transaction block, the SELECT runs after it.
      start = performance.now();
      let results: QueryResultLike<{ lsn: string }>[];
      try {
        results = (await client.query(
          `COMMIT; SELECT ${this.#backend.commitLsnFunction()}()::text AS lsn`,
        )) as unknown as QueryResultLike<{ lsn: string }>[];
      } catch (error) {
        observe(performance.now() - start, primaryOutcome(error));
        throw error;
      }
      observe(performance.now() - start, 'ok');
      // An aborted transaction (a failed statement whose error fn swallowed) answers COMMIT
      // with ROLLBACK: nothing was written, so there is no commit LSN to hand out.
      if (results[0]?.command === 'ROLLBACK') throw new TransactionAbortedError();
      const lsn = results[1]?.rows[0]?.lsn;
      if (lsn) await this.freshness.wrote(parseLsn(lsn));
      return result;
    } catch (error) {
      // The connection's own failure (not, say, a replica read's that fn let through).
      if (isNodeFailure(error, 'primary')) {
        broken = error as Error;
        this.#backend.reportFailure('primary');
      }
      throw toNodeError(error, 'primary');
    } finally {
      scope.open = false;
      client.release(broken ?? false);
    }
  }

  #view(contract: Contract | undefined): Queryable {
    return {
      query: (async (input: QueryInput, values?: unknown[]) =>
        this.#run(normalize(input, values), contract)) as Queryable['query'],
    };
  }

  /** The transaction this data source runs in from the current async context, if any. */
  #scope(): TransactionScope | undefined {
    const scope = activeTransaction();
    // A callback that fn left behind (a timer, an unawaited promise) may run after the
    // commit: its connection is back in the pool by then, so it routes as usual.
    return scope?.db === this && scope.open ? scope : undefined;
  }

  /** Sends one statement of this data source: into the running transaction, or routed. */
  #run(q: Statement, contract: Contract | undefined): Promise<QueryResultLike> {
    const scope = this.#scope();
    if (scope) return this.#inTransaction(scope, q);
    if (this.#transaction?.open) {
      throw new ConfigError(
        'asyncContext',
        'this gate runs requests without async context: inside db.transaction(fn), send statements through tx',
      );
    }
    // The connection goes back to the pool after the statement: transaction control or
    // session state would leak into whichever request borrows it next.
    const unsafe = unsafeStatement(q.text, 'request');
    if (unsafe) throw new UnsafeStatementError(unsafe, false);
    return statementKind(q.text) === 'write' ? this.#write(q) : this.#read(q, contract);
  }

  /**
   * Runs a statement on the transaction's connection. No routing (a transaction reads its
   * own uncommitted rows) and no commit-LSN capture: the commit happens at COMMIT, which
   * records the LSN for the whole transaction.
   */
  async #inTransaction(scope: TransactionScope, q: Statement): Promise<QueryResultLike> {
    // tx kept past the end of fn: its connection may already serve another request.
    if (!scope.open) throw new Error('freshgate: this transaction has already ended');
    const unsafe = unsafeStatement(q.text, 'transaction');
    if (unsafe) throw new UnsafeStatementError(unsafe, true);
    const start = performance.now();
    let result: QueryResultLike;
    try {
      result = await send(scope.client, q);
    } catch (error) {
      this.#backend.observePrimary(performance.now() - start, primaryOutcome(error));
      throw error;
    }
    this.#backend.observePrimary(performance.now() - start, 'ok');
    return result;
  }

  async #write(q: Statement): Promise<QueryResultLike> {
    const observe = this.#backend.observePrimary;
    const client = await acquire(this.#backend.primary, 'primary', observe);
    let result: QueryResultLike;
    let lsn: string | undefined;
    let broken: Error | undefined;
    try {
      const start = performance.now();
      try {
        result = await send(client, q);
      } catch (error) {
        observe(performance.now() - start, primaryOutcome(error));
        throw error;
      }
      observe(performance.now() - start, 'ok');
      // After the implicit transaction committed: the position is at or past its commit record.
      const position = await client.query(
        `SELECT ${this.#backend.commitLsnFunction()}()::text AS lsn`,
      );
      lsn = position.rows[0]?.lsn as string | undefined;
    } catch (error) {
      if (isNodeFailure(error, 'primary')) {
        broken = error as Error;
        this.#backend.reportFailure('primary');
      }
      throw toNodeError(error, 'primary');
    } finally {
      client.release(broken ?? false);
    }
    if (lsn) await this.freshness.wrote(parseLsn(lsn));
    return result;
  }

  #read(q: Statement, contract: Contract | undefined): Promise<QueryResultLike> {
    // The common read is routed at once to a replica or the primary: it runs without the
    // retry loop's suspended function (a read waiting for a connection holds less).
    const decision = this.freshness.route(contract ? { contract } : undefined);
    return decision.kind === 'primary' || decision.kind === 'replica'
      ? this.#readOn(decision, q, contract, READ_ATTEMPTS - 1)
      : this.#readDecided(decision, q, contract, READ_ATTEMPTS);
  }

  /** Runs the read where `decision` sends it; a failed replica read is decided again. */
  #readOn(
    decision: Decision & { kind: 'primary' | 'replica' },
    q: Statement,
    contract: Contract | undefined,
    attemptsLeft: number,
  ): Promise<QueryResultLike> {
    if (decision.kind === 'primary') {
      return this.#runRead(this.#backend.primary, null, decision, q, contract, attemptsLeft);
    }
    const pool = this.#backend.replicas.get(decision.node.name);
    if (!pool) {
      return Promise.reject(new Error(`freshgate: no pool for replica ${decision.node.name}`));
    }
    return this.#runRead(pool, decision.node.name, decision, q, contract, attemptsLeft);
  }

  /** A replica read failed: on the primary after a recovery conflict, else routed again. */
  #replicaFailed(
    error: unknown,
    replica: string,
    q: Statement,
    contract: Contract | undefined,
    attemptsLeft: number,
  ): Promise<QueryResultLike> {
    if ((error as { code?: unknown })?.code === RECOVERY_CONFLICT) {
      // Replay cancelled the read to apply WAL it conflicted with: the replica is fine and
      // the statement did not run. Read on the primary instead, as a read that must run
      // there (no budget: it is one retry), under the same contract so that a monotonic
      // session's floor covers what it saw; the rest of the request follows it to the
      // primary (no time travel).
      const onPrimary = this.freshness.route({ contract, locking: true });
      return this.#runRead(this.#backend.primary, null, onPrimary, q, contract, 0);
    }
    if (!isConnectionError(error) && !(error instanceof NotAReplica)) throw error;
    // The replica is unreachable (or no longer one): take it out of rotation and decide
    // again.
    this.#backend.reportFailure(replica);
    if (attemptsLeft <= 0) throw new FreshnessUnavailableError('no-healthy-replica', 1);
    const again = this.freshness.route(contract ? { contract } : undefined);
    return this.#readDecided(again, q, contract, attemptsLeft);
  }

  async #readDecided(
    first: Decision,
    q: Statement,
    contract: Contract | undefined,
    attempts: number,
  ): Promise<QueryResultLike> {
    const options = contract ? { contract } : undefined;
    // A decision may ask for a barrier, a position check or a wait first; each asks at most
    // once (again after the request's replica failed), and a failed replica is marked down,
    // so this ends; the attempts are counted across replica failures all the same.
    let decision = first;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) decision = this.freshness.route(options);
      switch (decision.kind) {
        case 'error':
          throw new FreshnessUnavailableError(decision.reason, decision.retryAfterSeconds);
        case 'barrier':
          try {
            const { lsn, source } = await this.#backend.primaryPositionAfter(decision.since);
            this.freshness.observedBarrier(lsn, source);
          } catch {
            // The primary cannot be asked: the read goes there within the budget, or fails.
            this.freshness.barrierFailed();
          }
          continue;
        case 'check':
          await this.#backend.replayLsn(decision.node.name);
          continue;
        case 'wait':
          await this.#backend.waitForReplay(decision.node.name, decision.lsn, decision.timeoutMs);
          continue;
        case 'primary':
        case 'replica':
          return this.#readOn(decision, q, contract, attempts - attempt - 1);
      }
    }
    throw new FreshnessUnavailableError('no-healthy-replica', 1);
  }

  /**
   * Runs a read on `pool` (`replica` names it; `null`: the primary) once it has a connection.
   * A failed replica read is decided again, up to `attemptsLeft` more times.
   */
  #runRead(
    pool: PoolLike,
    replica: string | null,
    decision: Decision,
    q: Statement,
    contract: Contract | undefined,
    attemptsLeft: number,
  ): Promise<QueryResultLike> {
    // A fallback the budget admitted waits for a slot (the cap on fallbacks in flight) and
    // holds it until its statement ends.
    if (decision.kind === 'primary' && decision.fallback === 'primary') {
      const slot = this.freshness.fallbackSlot(decision);
      if (slot !== true) {
        const reason = decision.reason;
        return slot.then((admitted) => {
          if (!admitted) throw new FreshnessUnavailableError(reason, SHED_RETRY_AFTER_SECONDS);
          return this.#acquireFor(pool, replica, decision, q, contract, attemptsLeft);
        });
      }
    }
    return this.#acquireFor(pool, replica, decision, q, contract, attemptsLeft);
  }

  #acquireFor(
    pool: PoolLike,
    replica: string | null,
    decision: Decision,
    q: Statement,
    contract: Contract | undefined,
    attemptsLeft: number,
  ): Promise<QueryResultLike> {
    const level = (contract ?? this.freshness.contract).level;
    if (replica !== null) {
      this.#backend.topology.queryStarted(replica);
      if (level !== 'monotonic' && level !== 'causal') {
        return new Promise((resolve, reject) => {
          this.#readOnReplica(pool, replica, decision, q, contract, attemptsLeft, resolve, reject);
        });
      }
    }
    // Decided now, from what the monitor knows when the read is routed.
    const bound = this.freshness.needsReadBound(decision, contract);
    // Statements on the primary are load the primary budget measures; replicas are not.
    const observe = replica ? undefined : this.#backend.observePrimary;
    // The statement starts once a connection is there: a read queued for one (every
    // connection busy) holds one reaction, not a suspended function's frame too.
    return connect(pool).then(
      (client) => {
        guardClient(client);
        return this.#readOnClient(client, replica, decision, q, contract, bound, attemptsLeft);
      },
      (error: unknown) => {
        this.#readEnded(replica, decision);
        const failure = this.#readFailure(
          notAcquired(error, replica ?? 'primary', observe),
          replica,
        );
        if (replica === null) throw failure;
        return this.#replicaFailed(failure, replica, q, contract, attemptsLeft);
      },
    );
  }

  /**
   * The commonest read: on a replica, under a contract that records nothing after it (all but
   * monotonic and causal), so it needs no bound. It settles the caller's one promise from
   * node-postgres' callbacks: no promise for the connection, none for the statement, no
   * reactions between them (each costs a promise hook per request where AsyncLocalStorage runs
   * on hooks). The callbacks run in node-postgres' context, not the request's; nothing here
   * reads the request's context, and the OpenTelemetry pg instrumentation binds them to it.
   */
  #readOnReplica(
    pool: PoolLike,
    replica: string,
    decision: Decision,
    q: Statement,
    contract: Contract | undefined,
    attemptsLeft: number,
    resolve: (result: QueryResultLike | Promise<QueryResultLike>) => void,
    reject: (error: unknown) => void,
  ): void {
    callBack<PoolClientLike>(pool, pool.connect, undefined, (error, client) => {
      try {
        if (error != null || client == null) {
          this.#readEnded(replica, decision);
          const failure = this.#readFailure(notAcquired(error, replica), replica);
          resolve(this.#replicaFailed(failure, replica, q, contract, attemptsLeft));
          return;
        }
        guardClient(client);
        callBack<QueryResultLike>(client, client.query, q, (error, result) => {
          try {
            if (error != null) {
              client.release(isConnectionError(error) ? (error as Error) : false);
              this.#readEnded(replica, decision);
              const failure = this.#readFailure(error, replica);
              resolve(this.#replicaFailed(failure, replica, q, contract, attemptsLeft));
              return;
            }
            // The node reported the end of its recovery before answering.
            const promoted = hotStandby(client) === false;
            client.release(false);
            this.#readEnded(replica, decision);
            if (promoted) {
              const failure = new NotAReplica(replica);
              resolve(this.#replicaFailed(failure, replica, q, contract, attemptsLeft));
              return;
            }
            // Under these contracts it only notes the replica read: there is nothing to wait for.
            void this.freshness.observedRead(decision, contract ? { contract } : undefined);
            resolve(result as QueryResultLike);
          } catch (failure) {
            reject(failure);
          }
        });
      } catch (failure) {
        reject(failure);
      }
    });
  }

  async #readOnClient(
    client: PoolClientLike,
    replica: string | null,
    decision: Decision,
    q: Statement,
    contract: Contract | undefined,
    needsBound: boolean,
    attemptsLeft: number,
  ): Promise<QueryResultLike> {
    const observe = replica ? undefined : this.#backend.observePrimary;
    let bound = needsBound;
    let broken: Error | undefined;
    let failed = false;
    let failure: unknown;
    let lsn: bigint | undefined;
    let result: QueryResultLike | undefined;
    try {
      // A replica read here is monotonic/causal (the others run in #readOnReplica): it must
      // not be answered by a node promoted since the monitor looked, or the client would see
      // commits the primary may never have. A connection that follows its `in_hot_standby`
      // reports tells after the statement, for free; any other is asked once, after the read
      // (the answer bounds the read too).
      if (replica !== null && !bound) bound = hotStandby(client) !== true;
      const start = observe ? performance.now() : 0;
      try {
        result = await send(client, q);
      } catch (error) {
        observe?.(performance.now() - start, primaryOutcome(error));
        throw error;
      }
      observe?.(performance.now() - start, 'ok');
      if (bound) {
        const sql = replica
          ? READ_BOUND_ON_REPLICA
          : `SELECT ${this.#backend.commitLsnFunction()}()::text AS lsn`;
        const position = await client.query(sql);
        const row = position.rows[0];
        if (replica && row !== undefined)
          learnedHotStandby(client, row.recovery !== false, row.hot);
        if (replica && row?.recovery === false) throw new NotAReplica(replica);
        const text = row?.lsn as string | undefined;
        if (text) lsn = parseLsn(text);
      } else if (replica !== null && hotStandby(client) === false) {
        // The node reported the end of its recovery before answering.
        throw new NotAReplica(replica);
      }
    } catch (error) {
      if (isConnectionError(error)) broken = error as Error;
      failure = this.#readFailure(error, replica);
      if (replica === null) throw failure;
      failed = true;
    } finally {
      client.release(broken ?? false);
      this.#readEnded(replica, decision);
    }
    // Decided again once the connection is back and the replica's read no longer counted.
    if (replica !== null && failed)
      return this.#replicaFailed(failure, replica, q, contract, attemptsLeft);
    await this.freshness.observedRead(decision, { lsn, contract });
    return result as QueryResultLike;
  }

  /** What a failed read rejects with; a broken primary connection takes the primary down. */
  #readFailure(error: unknown, replica: string | null): unknown {
    // The connection is still usable after a cancelled statement: only the read failed.
    if ((error as { code?: unknown })?.code === QUERY_CANCELED)
      return new StatementTimeoutError(replica ?? 'primary', { cause: error });
    if (replica === null && isConnectionError(error)) this.#backend.reportFailure('primary');
    return toNodeError(error, replica ?? 'primary');
  }

  /** A read left its node: the replica's in-flight count, or the primary fallback's slot. */
  #readEnded(replica: string | null, decision: Decision): void {
    if (replica) this.#backend.topology.queryFinished(replica);
    else if (decision.kind === 'primary' && decision.fallback === 'primary')
      this.freshness.fallbackEnded();
  }
}
