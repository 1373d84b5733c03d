import type { BudgetPriority, FallbackBudget } from './budget.js';
import type { Clock } from './clock.js';
import type { Contract, ContractLevel } from './contract.js';
import type { PrimaryState, ReplicaState, Topology } from './topology.js';

/** How a replica is chosen among those that satisfy the contract. */
export type SelectionPolicy = 'least-lag' | 'least-in-flight' | 'round-robin';

/**
 * Why a decision went where it went. Low-cardinality: used in headers, metrics and spans.
 *
 * Primary by rule: `in-transaction`, `locking-read`, `after-write`, `strong`,
 * `request-on-primary`, `pinned-primary`.
 * Replica: `replica-caught-up`, `replica-healthy`, `within-max-lag`, `sticky-replica`,
 * `request-replica`, `barrier-caught-up` (a barrier read: the replica replayed the primary
 * position observed after the request arrived).
 * No replica (the fallback chain applies): `hint-no-lsn`, `future-lsn`, `store-unavailable`,
 * `request-replica-lost`, `sticky-primary`, `sticky-unavailable`,
 * `request-replica-unavailable`, `no-healthy-replica`, `no-replica-caught-up`,
 * `lag-exceeds-max`.
 * Check: `replica-behind`. Barrier (a fresh primary position is needed first): the
 * {@link BarrierCause}.
 */
export type DecisionReason =
  | 'in-transaction'
  | 'locking-read'
  | 'after-write'
  | 'strong'
  | 'request-on-primary'
  | 'pinned-primary'
  | 'replica-caught-up'
  | 'replica-healthy'
  | 'within-max-lag'
  | 'sticky-replica'
  | 'request-replica'
  | 'hint-no-lsn'
  | 'future-lsn'
  | 'store-unavailable'
  | 'lsn-unknown'
  | 'sticky-primary'
  | 'sticky-unavailable'
  | 'request-replica-unavailable'
  | 'no-healthy-replica'
  | 'no-replica-caught-up'
  | 'lag-exceeds-max'
  | 'replica-behind'
  | 'barrier-caught-up'
  | 'request-replica-lost';

/**
 * Why a read needs a barrier: the primary's position observed after the request arrived (or,
 * for `request-replica-lost`, after its replica failed) as its required LSN.
 * `store-unavailable`: the pin store failed or timed out for a request without a token;
 * `hint-no-lsn`: `X-Read-After-Write` without any known LSN; `future-lsn`: a token ahead of
 * this instance's last primary sample (normal with several app instances);
 * `request-replica-lost`: the request's replica died after serving it;
 * `sticky-unavailable`: the replica a monotonic/causal client's token names (what it read
 * there is bounded only by the primary's position observed since) cannot serve the read.
 */
export type BarrierCause =
  | 'store-unavailable'
  | 'lsn-unknown'
  | 'hint-no-lsn'
  | 'future-lsn'
  | 'request-replica-lost'
  | 'sticky-unavailable';

/** Which fallback produced a decision, or `null` when none was needed. */
export type FallbackKind = 'primary' | 'wait' | 'stale' | 'error';

interface DecisionBase {
  readonly reason: DecisionReason;
  readonly fallback: FallbackKind | null;
  /** The primary budget was empty at some point of this decision. */
  readonly budgetExhausted: boolean;
}

/** Read the primary. */
export interface PrimaryDecision extends DecisionBase {
  readonly kind: 'primary';
  readonly node: PrimaryState;
  readonly route: 'primary';
  readonly stale: false;
  readonly lagMs: null;
}

/** Read this replica. */
export interface ReplicaDecision extends DecisionBase {
  readonly kind: 'replica';
  readonly node: ReplicaState;
  /** `replica:<name>` */
  readonly route: string;
  /** Served by the `stale` fallback: the replica may not satisfy the contract. */
  readonly stale: boolean;
  /**
   * The replica's lag. Under a lag bound and for a `stale` answer, as of this decision: the
   * measured lag plus the time since it was measured.
   */
  readonly lagMs: number | null;
}

/**
 * Refresh `node`'s replay position once (`SELECT pg_last_wal_replay_lsn()`), report it with
 * `Topology.observeReplayLsn`, then ask again.
 */
export interface CheckDecision extends DecisionBase {
  readonly kind: 'check';
  readonly node: ReplicaState;
  readonly lsn: bigint;
  readonly route: null;
  readonly stale: false;
  readonly lagMs: null;
}

/**
 * Wait up to `timeoutMs` for `node` to replay `lsn` (reporting progress with
 * `Topology.observeReplayLsn`), then ask again: the chain resumes after the wait.
 */
export interface WaitDecision extends DecisionBase {
  readonly kind: 'wait';
  readonly node: ReplicaState;
  readonly lsn: bigint;
  readonly timeoutMs: number;
  /** Index in the contract's fallback chain where the next decision resumes. */
  readonly resumeAt: number;
  readonly route: null;
  readonly stale: false;
  readonly lagMs: null;
}

/**
 * Observe the primary's position with a statement sent at or after `since` (a monitor sample
 * or one `pg_current_wal_lsn()`), report it with `RequestFreshness.observedBarrier`, then
 * ask again: the read then needs a node that has replayed that position.
 */
export interface BarrierDecision extends DecisionBase {
  readonly kind: 'barrier';
  readonly reason: BarrierCause;
  /** Clock time after which the primary's position must have been observed. */
  readonly since: number;
  readonly route: null;
  readonly stale: false;
  readonly lagMs: null;
}

/** Fail closed: HTTP 503 with `Retry-After`. */
export interface ErrorDecision extends DecisionBase {
  readonly kind: 'error';
  readonly retryAfterSeconds: number;
  readonly route: null;
  readonly stale: false;
  readonly lagMs: null;
}

/** The outcome of `decide()`. Switch on `kind`. */
export type Decision =
  | PrimaryDecision
  | ReplicaDecision
  | CheckDecision
  | WaitDecision
  | BarrierDecision
  | ErrorDecision;

/** Everything about one read that the decision depends on. Reused across calls. */
export interface RouteRequest {
  contract: Contract;
  /** `X-Read-After-Write` was set. */
  readAfterWrite: boolean;
  /** max(token LSN, pinned LSN, read floor), `null` when none is known. */
  requiredLsn: bigint | null;
  /** The verified token's LSN (part of `requiredLsn`), else `null`. */
  tokenLsn: bigint | null;
  /**
   * The latest clock time the token can have been issued (its `iat` is a whole second: the
   * end of that second), else `-Infinity`. A token issued after this instance's last primary
   * sample may be ahead of it (another app instance took the write since): that is a
   * requirement like any other, not a future LSN.
   */
  tokenIssuedBy: number;
  /**
   * The session's last route under monotonic/causal (`primary` or `replica:<name>`): from its
   * pin, or named by its token ({@link TokenClaims.node}); a route no replica has when they
   * disagree.
   */
  stickyRoute: string | null;
  /**
   * When the sticky route comes from a token: the clock time after which a primary position
   * bounds what the client read there, else `null`. Leaving such a replica needs a barrier
   * observed after this time.
   */
  stickySince: number | null;
  /**
   * Clock time at which the request's routing started, its first statement (a position
   * observed since then is fresh).
   */
  startedAt: number;
  /** Replica already used by this request. */
  requestReplica: ReplicaState | null;
  /** A previous read of this request went to the primary. */
  requestOnPrimary: boolean;
  wrote: boolean;
  inTransaction: boolean;
  locking: boolean;
  /** `pinMode: 'primary'` and the session holds a live pin. */
  pinnedPrimary: boolean;
  /** The pin store failed or timed out and no valid token tells the session's position. */
  storeUnavailable: boolean;
  /**
   * The tokens presented cannot be trusted to tell the client's position, whatever valid one
   * is among them: more `fg_fresh` cookies than a browser sends, or the cluster not yet known.
   */
  lsnUnknown: boolean;
  /** Clock time at which the request's replica was found dead, else `null`. */
  replicaLostAt: number | null;
  /**
   * The primary position observed for this request's barrier (already part of
   * `requiredLsn`), else `null`.
   */
  barrierLsn: bigint | null;
  /** Why the barrier was taken, kept as the reason of the decisions it leads to. */
  barrierCause: BarrierCause | null;
  /** No barrier can be taken (the primary could not be asked, or `onStoreError: 'primary'`). */
  barrierFailed: boolean;
  /** Neither a valid token nor a session key: primary fallbacks have `low` budget priority. */
  anonymous: boolean;
  /** A position check may still be requested in this request. */
  checkAllowed: boolean;
  /** A wait may still be requested in this request. */
  waitAllowed: boolean;
  /** Index in the fallback chain to start from (after a wait). */
  fallbackFrom: number;
}

/** What `decide()` reads besides the request. */
export interface DecideContext {
  topology: Topology;
  budget: FallbackBudget;
  selection: SelectionPolicy;
  /** Round-robin cursor, mutated. */
  cursor: { next: number };
  /**
   * How long a read may wait for a replica predicted to replay its required LSN soon, before a
   * `primary` fallback (a contract's `waitAllowanceMs` overrides it). Default 0: never.
   */
  waitAllowanceMs?: number;
  /**
   * Needed for predicted waits, and for a strict lag bound: without it a replica's lag is taken
   * as measured, not grown by the time since.
   */
  clock?: Clock;
}

/**
 * A fresh {@link RouteRequest} with neutral values.
 *
 * @example
 * ```ts
 * const request = routeRequest(defineContract('read-your-writes'), { requiredLsn: 42n });
 * ```
 */
export function routeRequest(contract: Contract, fields?: Partial<RouteRequest>): RouteRequest {
  const request: RouteRequest = {
    contract,
    readAfterWrite: false,
    requiredLsn: null,
    tokenLsn: null,
    tokenIssuedBy: Number.NEGATIVE_INFINITY,
    stickyRoute: null,
    stickySince: null,
    startedAt: 0,
    requestReplica: null,
    requestOnPrimary: false,
    wrote: false,
    inTransaction: false,
    locking: false,
    pinnedPrimary: false,
    storeUnavailable: false,
    lsnUnknown: false,
    replicaLostAt: null,
    barrierLsn: null,
    barrierCause: null,
    barrierFailed: false,
    anonymous: false,
    checkAllowed: true,
    waitAllowed: true,
    fallbackFrom: 0,
  };
  // Assigned rather than spread into the literal: every request object keeps the literal's shape.
  return fields === undefined ? request : Object.assign(request, fields);
}

/**
 * The requirement is a token issued after the primary sample: another instance's write, which
 * the primary has (a token never outlives its cluster's timeline), so no look at the primary
 * is needed to trust it.
 */
function issuedSinceSample(request: RouteRequest, p: PrimaryState, required: bigint): boolean {
  return (
    request.tokenLsn !== null &&
    request.tokenLsn >= required &&
    p.currentLsnAt !== null &&
    request.tokenIssuedBy > p.currentLsnAt
  );
}

function primary(
  node: PrimaryState,
  reason: DecisionReason,
  fallback: FallbackKind | null,
  budgetExhausted: boolean,
): PrimaryDecision {
  return {
    kind: 'primary',
    node,
    route: 'primary',
    reason,
    fallback,
    budgetExhausted,
    stale: false,
    lagMs: null,
  };
}

function replica(
  node: ReplicaState,
  reason: DecisionReason,
  stale: boolean,
  fallback: FallbackKind | null,
  budgetExhausted: boolean,
  lagMs = node.lagMs,
): ReplicaDecision {
  return {
    kind: 'replica',
    node,
    route: node.route,
    reason,
    fallback,
    budgetExhausted,
    stale,
    lagMs,
  };
}

/**
 * How old, at most, the data `node` serves at `now`: its measured lag plus the time since the
 * measurement (a replica may have replayed nothing since). `null` while unmeasured.
 */
function lagBound(node: ReplicaState, now: number): number | null {
  const lag = node.lagMs;
  if (lag === null) return null;
  const since = node.lagAt;
  return since === null || now <= since ? lag : lag + (now - since);
}

/** A replica decision; under a lag bound it reports the lag at `now`. */
function replicaWithin(
  node: ReplicaState,
  reason: DecisionReason,
  maxLagMs: number | null,
  now: number,
): ReplicaDecision {
  return replica(
    node,
    reason,
    false,
    null,
    false,
    maxLagMs === null ? node.lagMs : lagBound(node, now),
  );
}

/** The decision's time for lag bounds; without a clock, lags count as measured. */
function boundTime(ctx: DecideContext): number {
  return ctx.clock === undefined ? Number.NEGATIVE_INFINITY : ctx.clock.now();
}

function withinLag(node: ReplicaState, maxLagMs: number, now: number): boolean {
  const lag = lagBound(node, now);
  return lag !== null && lag <= maxLagMs;
}

function tagsMatch(node: ReplicaState, contract: Contract): boolean {
  const tags = contract.tags;
  if (tags === null) return true;
  for (const key in tags) if (node.tags[key] !== tags[key]) return false;
  return true;
}

function clusterOk(node: ReplicaState, p: PrimaryState, level: ContractLevel): boolean {
  if (node.clusterId !== null && p.clusterId !== null) return node.clusterId === p.clusterId;
  // LSNs and lag only mean something within one cluster; without a known cluster only a
  // read that compares neither may use the replica.
  return level === 'eventual';
}

/** Healthy, circuit closed, same cluster, tags match. */
function servable(node: ReplicaState, p: PrimaryState, contract: Contract, level: ContractLevel) {
  return (
    node.health === 'healthy' &&
    node.circuit === 'closed' &&
    clusterOk(node, p, level) &&
    tagsMatch(node, contract)
  );
}

/** Satisfies LSN and lag limits at `now`, assuming {@link servable}. */
function satisfies(
  node: ReplicaState,
  level: ContractLevel,
  maxLagMs: number | null,
  required: bigint | null,
  now: number,
) {
  if (level === 'eventual') return true;
  if (maxLagMs !== null && !withinLag(node, maxLagMs, now)) return false;
  return required === null || (node.replayLsn !== null && node.replayLsn >= required);
}

/**
 * Whether a replica may serve a `stale` fallback: up, circuit closed, and its lag measured. A
 * stale answer says how stale it is (`X-Freshness-Lag-Ms`); one that cannot say is not given.
 */
function staleServable(node: ReplicaState): node is ReplicaState & { lagMs: number } {
  return (
    (node.health === 'healthy' || node.health === 'lagging') &&
    node.circuit === 'closed' &&
    node.lagMs !== null
  );
}

/** The servable replica whose data is youngest at `now`. */
function staleCandidate(
  ctx: DecideContext,
  contract: Contract,
  level: ContractLevel,
  now: number,
): ReplicaState | null {
  const p = ctx.topology.primary;
  let best: ReplicaState | null = null;
  let bestLag = Number.POSITIVE_INFINITY;
  for (const node of ctx.topology.replicas) {
    if (!staleServable(node) || !clusterOk(node, p, level) || !tagsMatch(node, contract)) continue;
    const lag = lagBound(node, now) as number;
    if (best === null || lag < bestLag) {
      best = node;
      bestLag = lag;
    }
  }
  return best;
}

function runFallbacks(
  request: RouteRequest,
  ctx: DecideContext,
  level: ContractLevel,
  cause: DecisionReason,
  waitCandidate: ReplicaState | null,
  staleOnly: ReplicaState | null | undefined,
): Decision {
  const chain = request.contract.fallbacks;
  let exhausted = false;
  for (let i = request.fallbackFrom; i < chain.length; i++) {
    const step = chain[i] as (typeof chain)[number];
    switch (step.kind) {
      case 'primary': {
        const predicted = predictedWait(request, ctx, waitCandidate);
        if (predicted !== null) {
          // Back to this step afterwards: the request waits once.
          return wait(waitCandidate as ReplicaState, request, predicted, i, cause, exhausted);
        }
        if (ctx.budget.tryTake(priority(request, cause)))
          return primary(ctx.topology.primary, cause, 'primary', exhausted);
        exhausted = true;
        break;
      }
      case 'wait':
        if (request.waitAllowed && waitCandidate !== null && request.requiredLsn !== null) {
          return wait(waitCandidate, request, step.timeoutMs, i + 1, cause, exhausted);
        }
        break;
      case 'stale': {
        if (request.barrierCause !== null) {
          // A barrier read must not show the past: the fresh equivalent of a stale answer is
          // the primary, within the budget.
          if (ctx.budget.tryTake(priority(request, cause)))
            return primary(ctx.topology.primary, cause, 'primary', exhausted);
          exhausted = true;
          break;
        }
        const now = boundTime(ctx);
        const node =
          staleOnly === undefined
            ? staleCandidate(ctx, request.contract, level, now)
            : staleOnly !== null && staleServable(staleOnly)
              ? staleOnly
              : null;
        if (node !== null) {
          return replica(node, cause, true, 'stale', exhausted, lagBound(node, now));
        }
        break;
      }
      case 'error':
        return errorDecision(ctx, cause, exhausted);
    }
  }
  // The chain is spent (typically: its primary step found the budget empty): fail closed
  // rather than overload the primary or serve an unflagged stale read.
  return errorDecision(ctx, cause, exhausted);
}

function wait(
  node: ReplicaState,
  request: RouteRequest,
  timeoutMs: number,
  resumeAt: number,
  cause: DecisionReason,
  exhausted: boolean,
): WaitDecision {
  return {
    kind: 'wait',
    node,
    lsn: request.requiredLsn as bigint,
    timeoutMs,
    resumeAt,
    reason: cause,
    fallback: 'wait',
    budgetExhausted: exhausted,
    route: null,
    stale: false,
    lagMs: null,
  };
}

/**
 * Before a `primary` step: the time to wait for `node` instead, when it is predicted to replay
 * the required LSN within the allowance, else `null`. The prediction: a replica that lags by
 * `lagMs` replays what the primary had `lagMs` ago, so the LSN arrives `lagMs` after the
 * primary was first seen at it (a commit this instance took, a monitor sample), or after now
 * when no position seen yet is that far (another instance's write). The whole allowance is
 * the timeout: a lag that grew is still within what the route accepts to wait.
 */
function predictedWait(
  request: RouteRequest,
  ctx: DecideContext,
  node: ReplicaState | null,
): number | null {
  const allowance = request.contract.waitAllowanceMs ?? ctx.waitAllowanceMs ?? 0;
  const required = request.requiredLsn;
  if (
    allowance <= 0 ||
    ctx.clock === undefined ||
    !request.waitAllowed ||
    node === null ||
    required === null ||
    node.lagMs === null
  )
    return null;
  const now = ctx.clock.now();
  const reachedAt = ctx.topology.primaryReachedAt(required) ?? now;
  return reachedAt + node.lagMs - now <= allowance ? allowance : null;
}

/**
 * The session's sticky replica cannot serve the read. A replica its token names: what the
 * client read there is at most the primary's position observed after the token was issued,
 * so a barrier observed since then lets the read go anywhere that replayed it (the monitor's
 * sample when recent enough, else one `pg_current_wal_lsn()`). A pinned replica, or no
 * barrier to be had: the fallback chain.
 */
function leaveSticky(request: RouteRequest, ctx: DecideContext, level: ContractLevel): Decision {
  if (request.barrierLsn === null && !request.barrierFailed) {
    // What a token's claims read is bounded by the primary's position after `stickySince`,
    // what a pin's node served by its position after the request began.
    if (request.stickySince !== null) return barrier('sticky-unavailable', request.stickySince);
    if (level === 'read-your-writes') return barrier('sticky-unavailable', request.startedAt);
  }
  return runFallbacks(request, ctx, level, 'sticky-unavailable', null, null);
}

function primaryOrError(
  request: RouteRequest,
  ctx: DecideContext,
  cause: DecisionReason,
): PrimaryDecision | ErrorDecision {
  if (ctx.budget.tryTake(priority(request, cause)))
    return primary(ctx.topology.primary, cause, 'primary', false);
  return errorDecision(ctx, cause, true);
}

/**
 * Anonymous traffic, and tokens the primary has not reached (only a restore or a forged key
 * makes them), use the budget above its reserve only.
 */
function priority(request: RouteRequest, cause: DecisionReason): BudgetPriority {
  return request.anonymous || cause === 'future-lsn' ? 'low' : 'normal';
}

function barrier(cause: BarrierCause, since: number): BarrierDecision {
  return {
    kind: 'barrier',
    reason: cause,
    since,
    fallback: null,
    budgetExhausted: false,
    route: null,
    stale: false,
    lagMs: null,
  };
}

function errorDecision(
  ctx: DecideContext,
  cause: DecisionReason,
  exhausted: boolean,
): ErrorDecision {
  const retryAfterSeconds = exhausted ? Math.max(1, Math.ceil(ctx.budget.msUntilNext() / 1000)) : 1;
  return {
    kind: 'error',
    retryAfterSeconds,
    reason: cause,
    fallback: 'error',
    budgetExhausted: exhausted,
    route: null,
    stale: false,
    lagMs: null,
  };
}

function check(node: ReplicaState, lsn: bigint): CheckDecision {
  return {
    kind: 'check',
    node,
    lsn,
    reason: 'replica-behind',
    fallback: null,
    budgetExhausted: false,
    route: null,
    stale: false,
    lagMs: null,
  };
}

/**
 * Replicas whose lags differ by less than this are equally fresh: lag is measured once per
 * poll interval, so smaller differences are noise, and treating them as ties spreads reads
 * over equally fresh replicas instead of sending every read to the first one.
 */
const LAG_TIE_MS = 50;

function better(a: ReplicaState, b: ReplicaState, selection: SelectionPolicy): boolean {
  const lagA = a.lagMs ?? Number.POSITIVE_INFINITY;
  const lagB = b.lagMs ?? Number.POSITIVE_INFINITY;
  const sameLag = lagA === lagB || Math.abs(lagA - lagB) < LAG_TIE_MS;
  if (selection === 'least-in-flight' || sameLag) {
    if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight;
    // Still tied: the first one met wins, and the scan starts at a rotating replica.
    if (sameLag) return false;
  }
  return lagA < lagB;
}

/**
 * The routing decision: synchronous, no I/O, one small object allocated. Reads only the
 * cached {@link Topology}; may take one token from the primary budget.
 *
 * Rules, in order: transactions, locking reads and reads after a write in the request go to
 * the primary; `strong` always does; `X-Read-After-Write` makes the contract at least
 * read-your-writes. A read that must include every write acknowledged before the request
 * arrived but knows no LSN (a hint without one, a failed pin read, a replica lost
 * mid-request) first gets a `barrier` decision: the primary's position observed after that
 * moment becomes its required LSN. A required LSN beyond the primary's known position gets
 * a barrier too (a fresh look), and only past the fresh position routes to the primary
 * without waiting; a request that used a replica keeps it (or leaves for the primary: no time
 * travel within a request);
 * monotonic/causal sessions stick to their last node, and so do their read-your-writes reads
 * (a floor the session read under monotonic is often only that node); otherwise the policy picks among
 * healthy replicas of the same cluster whose replay LSN ≥ the required LSN (and, for
 * `{ maxLag }`, whose lag ≤ maxLag). When none qualifies but one is merely behind, the first
 * answer is a single `check` of the most advanced one; then the fallback chain applies, and a
 * primary fallback must pass the budget.
 *
 * @example
 * ```ts
 * const ctx = { topology, budget: new PrimaryBudget(), selection: 'least-lag', cursor: { next: 0 } } as const;
 * const d = decide(routeRequest(defineContract('read-your-writes'), { requiredLsn }), ctx);
 * if (d.kind === 'replica') runOn(d.node.name);
 * ```
 */
export function decide(request: RouteRequest, ctx: DecideContext): Decision {
  const p = ctx.topology.primary;
  if (request.inTransaction) return primary(p, 'in-transaction', null, false);
  if (request.locking) return primary(p, 'locking-read', null, false);
  if (request.wrote) return primary(p, 'after-write', null, false);
  const contract = request.contract;
  if (contract.level === 'strong') return primary(p, 'strong', null, false);

  // A hint, or a request that must not travel back in time after losing its replica, reads
  // at least its own writes.
  const level: ContractLevel =
    (request.readAfterWrite || request.replicaLostAt !== null) && contract.level === 'eventual'
      ? 'read-your-writes'
      : contract.level;
  const required = level === 'eventual' ? null : request.requiredLsn;

  if (level !== 'eventual') {
    if (request.requestOnPrimary) return primary(p, 'request-on-primary', null, false);
    if (request.pinnedPrimary) return primary(p, 'pinned-primary', null, false);
    // Everything acknowledged before a moment is at or before the primary's position observed
    // after it: with that position as the required LSN, a replica that has replayed it is as
    // good as the primary. Until it is known, nothing is routed.
    const cause: BarrierCause | null =
      request.barrierLsn !== null
        ? null
        : request.replicaLostAt !== null
          ? 'request-replica-lost'
          : request.storeUnavailable
            ? 'store-unavailable'
            : request.lsnUnknown
              ? 'lsn-unknown'
              : request.readAfterWrite && required === null
                ? 'hint-no-lsn'
                : null;
    if (cause !== null) {
      // No barrier to be had: only the primary is known to be fresh enough, so the route's
      // own chain must not serve a replica (`stale`) or wait for one.
      if (request.barrierFailed) return primaryOrError(request, ctx, cause);
      return barrier(cause, request.replicaLostAt ?? request.startedAt);
    }
    if (
      required !== null &&
      p.currentLsn !== null &&
      required > p.currentLsn &&
      !issuedSinceSample(request, p, required)
    ) {
      // Known since before this instance's last sample, yet beyond it: look at the primary
      // now before calling the LSN impossible (a pin written by another instance since).
      if (request.barrierLsn === null && !request.barrierFailed) {
        return barrier('future-lsn', request.startedAt);
      }
      // Beyond the primary's position seen after the request arrived: a restore or data loss.
      // Only the primary can answer; the read's own position replaces the token.
      return primaryOrError(request, ctx, 'future-lsn');
    }
  }

  const maxLagMs = level === 'bounded' ? contract.maxLagMs : null;
  // Only a lag bound needs the time: a lag grows with the age of its measurement.
  const now = maxLagMs === null ? 0 : boundTime(ctx);

  const pinned = request.requestReplica;
  if (pinned !== null) {
    if (servable(pinned, p, contract, level)) {
      if (satisfies(pinned, level, maxLagMs, required, now)) {
        return replicaWithin(pinned, 'request-replica', maxLagMs, now);
      }
      const behind = required !== null && (maxLagMs === null || withinLag(pinned, maxLagMs, now));
      if (behind && request.checkAllowed) return check(pinned, required);
      return runFallbacks(
        request,
        ctx,
        level,
        'request-replica-unavailable',
        behind ? pinned : null,
        pinned,
      );
    }
    return runFallbacks(request, ctx, level, 'request-replica-unavailable', null, pinned);
  }

  // Read-your-writes sticks too: a session that read something under monotonic must not read
  // an older version of it on the next page (the pin or token names the node, not an LSN).
  // Unlike monotonic it does not keep to the node for its fallback chain: once a barrier
  // bounds what was read there, any replica that has replayed it will do.
  const ryw = level === 'read-your-writes';
  if (
    request.stickyRoute !== null &&
    (level === 'monotonic' || level === 'causal' || (ryw && request.barrierLsn === null))
  ) {
    if (request.stickyRoute === 'primary') {
      return runFallbacks(request, ctx, level, 'sticky-primary', null, null);
    }
    const sticky = ctx.topology.replicaByRoute(request.stickyRoute);
    if (sticky === undefined || !servable(sticky, p, contract, level)) {
      return leaveSticky(request, ctx, level);
    }
    if (satisfies(sticky, level, maxLagMs, required, now)) {
      return replicaWithin(sticky, 'sticky-replica', maxLagMs, now);
    }
    // Leaving the sticky replica is safe only once it is known to be behind the required LSN
    // *now*: then every earlier read on it saw less than the required LSN, which any other
    // qualifying replica has replayed. A cached position may be older than those reads.
    const provenBehind = sticky.replayLsnAt !== null && sticky.replayLsnAt >= request.startedAt;
    if (!provenBehind) {
      if (request.checkAllowed && required !== null) return check(sticky, required);
      return leaveSticky(request, ctx, level);
    }
  }

  const replicas = ctx.topology.replicas;
  const count = replicas.length;
  // Ties go to the first replica met; starting the scan at a rotating replica spreads them.
  const offset = count > 1 && ctx.selection !== 'round-robin' ? ctx.cursor.next++ % count : 0;
  if (ctx.cursor.next >= Number.MAX_SAFE_INTEGER) ctx.cursor.next = 0;
  let best: ReplicaState | null = null;
  let eligible = 0;
  let anyServable = false;
  let anyWithinLag = false;
  let behind: ReplicaState | null = null;
  for (let i = 0; i < count; i++) {
    const node = replicas[(offset + i) % count] as ReplicaState;
    if (!servable(node, p, contract, level)) continue;
    anyServable = true;
    if (maxLagMs !== null && !withinLag(node, maxLagMs, now)) continue;
    anyWithinLag = true;
    if (required !== null && (node.replayLsn === null || node.replayLsn < required)) {
      if (
        node.replayLsn !== null &&
        (behind === null || (behind.replayLsn as bigint) < node.replayLsn)
      ) {
        behind = node;
      }
      continue;
    }
    eligible++;
    if (best === null || better(node, best, ctx.selection)) best = node;
  }

  if (best !== null) {
    if (ctx.selection === 'round-robin' && eligible > 1) {
      let k = ctx.cursor.next++ % eligible;
      if (ctx.cursor.next >= Number.MAX_SAFE_INTEGER) ctx.cursor.next = 0;
      for (const node of replicas) {
        if (
          servable(node, p, contract, level) &&
          satisfies(node, level, maxLagMs, required, now) &&
          k-- === 0
        ) {
          best = node;
          break;
        }
      }
    }
    const reason: DecisionReason =
      level === 'bounded'
        ? 'within-max-lag'
        : required === null
          ? 'replica-healthy'
          : request.barrierCause !== null && request.barrierLsn === required
            ? 'barrier-caught-up'
            : 'replica-caught-up';
    return replicaWithin(best, reason, maxLagMs, now);
  }

  // A barrier read that no replica can serve yet keeps the barrier's cause: the degraded
  // path stays visible in the fallback metrics.
  const cause: DecisionReason = !anyServable
    ? 'no-healthy-replica'
    : !anyWithinLag
      ? 'lag-exceeds-max'
      : (request.barrierCause ?? 'no-replica-caught-up');
  if (behind !== null && required !== null && request.checkAllowed) return check(behind, required);
  return runFallbacks(request, ctx, level, cause, behind, undefined);
}
