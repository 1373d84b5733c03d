import { context, type Span, trace } from '@opentelemetry/api';
import type { Clock } from './clock.js';
import type { Contract } from './contract.js';
import { type CookieSettings, clearCookie, isSecure, serializeCookie } from './cookie.js';
import {
  type BarrierCause,
  type DecideContext,
  type Decision,
  decide,
  type RouteRequest,
  routeRequest,
} from './decide.js';
import { StoreError } from './errors.js';
import { formatLsn, maxLsn } from './lsn.js';
import type { Pin, PinStore, PinStoreVouch } from './pin-store.js';
import type { Telemetry, TokenIgnoredReason } from './telemetry.js';
import { withTimeout } from './timeout.js';
import type { TokenCodec } from './token-codec.js';
import type { ReplicaState, Topology } from './topology.js';

/**
 * Header of the freshness token, on write responses (and monotonic/causal reads) and on
 * requests that carry one back.
 *
 * @example
 * ```ts
 * await fetch(url, { headers: { [HEADER_TOKEN]: token } });
 * ```
 */
export const HEADER_TOKEN = 'X-Freshness-Token';
/** Response header naming the node that served the request: `primary` or `replica:<name>`. */
export const HEADER_ROUTE = 'X-Freshness-Route';
/** Response header of bounded and stale reads: the measured lag of the serving replica, ms. */
export const HEADER_LAG_MS = 'X-Freshness-Lag-Ms';
/** Request hint (`true` or `1`): this read must see the client's own writes. */
export const HEADER_READ_AFTER_WRITE = 'X-Read-After-Write';

/**
 * Where the engine writes response headers. Adapters translate it to their framework; for
 * `Set-Cookie` they must keep the application's cookies and replace an earlier value of the
 * same cookie (one freshness cookie per response, the newest): `responseSink` does both.
 */
export interface ResponseSink {
  setHeader(name: string, value: string): void;
  /**
   * Whether the request came over https, asked only when a cookie is written and `begin()`
   * was given no `secure`: an adapter's sink already holds the request, so it needs no
   * closure per request to tell.
   */
  secure?(): boolean;
}

/** Per-statement routing options. */
export interface RouteOptions {
  /** A contract for this query only (e.g. a `strong` permission check in a `monotonic` route). */
  contract?: Contract;
  /** The statement runs inside an explicit transaction. */
  inTransaction?: boolean;
  /** `SELECT … FOR UPDATE/SHARE`. */
  locking?: boolean;
}

/** Engine settings a request needs. Internal. */
export interface RequestEnvironment {
  topology: Topology;
  codec: TokenCodec;
  decideContext: DecideContext;
  telemetry: Telemetry;
  clock: Clock;
  pinStore: PinStore | null;
  pinTtlMs: number;
  /**
   * Lifetime of what reads record in the pin store (the sticky node, a read floor): as long
   * as a token lives, so that a session known only by its key stays monotonic as long as a
   * token-carrying one. `null` with `pinMode: 'primary'`, where reads must not keep a session
   * pinned: only writes start and restart a pin there.
   */
  readPinTtlMs: number | null;
  /** The bound of each pin store call; `null` when the store bounds its calls itself. */
  storeTimeoutMs: number | null;
  /** `onStoreError: 'primary'`: a failed pin read sends the session's reads to the primary. */
  storeErrorToPrimary: boolean;
  /** `onStoreError: 'token-only'`: a failed pin read carries on with the token alone. */
  storeErrorTokenOnly: boolean;
  hashSessionKey: (sessionKey: string) => string;
  cookie: CookieSettings | null;
  /**
   * Failed pin writes: a write whose pin could not be extended is missing from the store until
   * its pin would have expired, and until then that session's pin read does not tell the whole
   * story. Per session (hashed key → clock time); past {@link MAX_FAILED_PINS} sessions, one
   * time for all (`everyoneAt`). `epoch` is the last {@link PinStoreVouch.epoch} seen: when it
   * changes, the store lost pins and `everyoneAt` restarts.
   */
  store: { failedAt: Map<string, number>; everyoneAt: number; epoch: number | null };
}

/** A valid token's replica claim: the client read on `node` up to the end of second `iat`. */
export interface TokenNodeClaim {
  node: string;
  /** The token's `iat`, seconds since the epoch. */
  iat: number;
}

/**
 * How far apart the clocks of app instances may be, for token claims: a primary position
 * sampled this long after the end of a token's `iat` second (by this instance's clock) is past
 * everything the client read on the replica the token names.
 */
export const CLAIM_CLOCK_SKEW_MS = 1_000;

/** When a claim made in second `iat` is past by this instance's clock (ms since the epoch). */
function claimSince(iat: number): number {
  return (iat + 1) * 1000 + CLAIM_CLOCK_SKEW_MS;
}

/** The sticky route of a client whose pin and tokens name different replicas: none has it. */
const CLAIMS_DISAGREE = 'replica-claims-disagree';

/** What a request keeps of the token that sets its position (a `VerifiedToken`). Internal. */
export interface StartToken {
  readonly lsn: bigint;
  readonly iat: number;
  readonly node?: string | undefined;
}

/** What `Engine.begin` found out before the request could route. Internal. */
export interface RequestStart {
  contract: Contract;
  readAfterWrite: boolean;
  /**
   * The verified token of the highest LSN, usable by every contract: its LSN, `iat` (seconds
   * since the epoch) and replica claim ({@link TokenClaims.node}), e.g. the codec's cached
   * result (the request keeps a copy of the three).
   */
  token: StartToken | null;
  /**
   * The replica claims of every valid token presented; `null`/absent: `token`'s own claim, if
   * it has one.
   */
  tokenClaims?: readonly TokenNodeClaim[] | null;
  /** The token was issued to another session: only `causal` reads use it. */
  tokenRejection: TokenIgnoredReason | null;
  /** The presented token when it verified (forwarded to other services), else `null`. */
  presentedToken?: string | null;
  sessionHash: string | null;
  pin: Pin | undefined;
  pinnedPrimary: boolean;
  storeUnavailable: boolean;
  /** The presented tokens cannot tell the client's position (see `RouteRequest.lsnUnknown`). */
  lsnUnknown?: boolean;
  /**
   * The request came over https; a function is called only when a cookie is written;
   * `undefined`: ask the sink (`ResponseSink.secure`), else no.
   */
  secure: boolean | (() => boolean) | undefined;
  /** Names of rejected freshness cookies to clear (`Max-Age=0`) in the response. */
  clearCookies?: readonly string[];
  sink: ResponseSink | undefined;
  span: Span | undefined;
}

/**
 * The freshness state of one request: created by `Engine.begin`, asked for a route before
 * each read, told about reads and writes, and the source of the response headers. Not shared
 * between requests.
 *
 * @example
 * ```ts
 * const freshness = await engine.begin({ contract: 'monotonic', token: req.headers['x-freshness-token'] });
 * const decision = freshness.route();
 * // run the read where decision says, then:
 * await freshness.observedRead(decision, { lsn: positionAfterRead });
 * // after a write has committed:
 * await freshness.wrote(commitLsn);
 * ```
 */
export class RequestFreshness {
  /** `X-Read-After-Write` was set. */
  readonly readAfterWrite: boolean;

  readonly #env: RequestEnvironment;
  // What the request keeps of its start (the start object itself is not kept: a request
  // waiting for a connection holds as little as it can).
  readonly #presentedToken: string | null;
  readonly #startToken: StartToken | null;
  readonly #secure: boolean | (() => boolean) | undefined;
  readonly #sink: ResponseSink | undefined;
  readonly #startSpan: Span | undefined;
  /** What the engine's decisions read, made at the first statement: `null` before. */
  #route: RouteRequest | null = null;
  // What the routing state starts from (read only when it is made).
  readonly #pinnedPrimary: boolean;
  readonly #storeUnavailable: boolean;
  readonly #lsnUnknown: boolean;
  #contract: Contract;
  #tokenRejection: TokenIgnoredReason | null;
  #floor: bigint | null = null;
  /** The barrier's primary position, part of the required LSN. */
  #barrierLsn: bigint | null = null;
  #barrierCause: BarrierCause | null = null;
  /** A read of this request completed on its replica. */
  #readOnReplica = false;
  #issuedLsn: bigint | null = null;
  #token: string | null = null;
  #routeHeader: string | null = null;
  #pinNode: string | null;
  #pinLsn: bigint | null;
  #pinTtlMs: number;
  #sessionHash: string | null;
  #commitLsn: bigint | null = null;
  #routedAt = 0;
  /**
   * Replica claims of the presented tokens not yet bounded otherwise, each with the clock time
   * after which a primary position bounds it; `null` when none, `undefined` while the one
   * token's claim is still to be made (at the first statement that needs it: a request that
   * runs none never pays for the array).
   */
  #claims: { node: string; since: number }[] | null | undefined = null;
  /** The replica the latest token issued in this request names, and that token's `iat`. */
  #issuedNode: string | null = null;
  #issuedIat: number | null = null;
  #waitStartedAt: number | null = null;
  #waitNode: ReplicaState | null = null;
  #replaceToken = false;
  /** Made at the first header: most requests set none. */
  #headers: Record<string, string> | null = null;

  /** @internal Requests start with `engine.begin()`. */
  constructor(env: RequestEnvironment, start: RequestStart) {
    this.#env = env;
    this.#presentedToken = start.presentedToken ?? null;
    // A copy of its own rather than the codec's cached object, so that nothing in flight
    // points into the codec's cache. On Express and Node.js 20, short runs of section 1 found
    // the copy cheaper (no token to token +1.7 and +1.6 µs, against +3.1 and +6.7 holding the
    // cached object); full runs did not (+4.8 and +6.8 µs, against +3.4): their spread from one
    // run to the next is larger than the difference.
    const token = start.token;
    this.#startToken = token === null ? null : { lsn: token.lsn, iat: token.iat, node: token.node };
    this.#secure = start.secure;
    this.#sink = start.sink;
    this.#startSpan = start.span;
    this.#contract = start.contract;
    this.readAfterWrite = start.readAfterWrite;
    this.#tokenRejection = start.tokenRejection;
    this.#pinNode = start.pin?.node ?? null;
    this.#pinLsn = start.pin?.lsn ?? null;
    this.#pinTtlMs = start.pin?.ttlMs ?? 0;
    this.#sessionHash = start.sessionHash;
    const claims = start.tokenClaims;
    if (claims != null && claims.length > 0) {
      this.#claims = claims.map((c) => ({ node: c.node, since: claimSince(c.iat) }));
    } else if (token !== null && token.node !== undefined) {
      this.#claims = undefined;
    }
    // The routing state is made at the first statement (`#routing`): what it starts from is
    // kept here.
    this.#pinnedPrimary = start.pinnedPrimary;
    // A valid token never depends on the store: a failed store only loses what it alone
    // knew, which matters for a request that carries nothing else.
    this.#storeUnavailable = start.storeUnavailable && start.token === null;
    this.#lsnUnknown = start.lsnUnknown === true;
    if (env.cookie !== null) {
      for (const name of start.clearCookies ?? NO_COOKIES)
        this.#setHeader('Set-Cookie', clearCookie(env.cookie, name, this.#isSecure()));
    }
  }

  /** Headers set so far (the same values pushed to the sink). */
  get headers(): Record<string, string> {
    this.#headers ??= {};
    return this.#headers;
  }

  /** The route's declared contract. */
  get contract(): Contract {
    return this.#contract;
  }

  /** Why a presented token is not used, or `null`. */
  get tokenRejection(): TokenIgnoredReason | null {
    return this.#tokenRejection;
  }

  /**
   * Declares the route's contract after the request started. For adapters whose per-route
   * declaration runs after the request began (Express route middleware): the token and pin are
   * read once, whatever the route turns out to be. Statements already routed (say, by an
   * authentication middleware that loaded the user) keep their decisions; later ones use the
   * new contract, still on the request's one replica or the primary (no time travel).
   *
   * @example
   * ```ts
   * const freshness = await engine.begin({ token }); // default contract
   * freshness.useContract(engine.contract('monotonic')); // the matched route's
   * ```
   */
  useContract(contract: Contract): void {
    this.#contract = contract;
  }

  /**
   * The token to forward on calls to other services (causal reads across services): the
   * newest token issued in this request, else the valid token the client presented, else
   * `null`.
   *
   * @example
   * ```ts
   * const token = req.freshness.forwardToken();
   * await fetch(url, { headers: token ? { 'X-Freshness-Token': token } : {} });
   * ```
   */
  forwardToken(): string | null {
    return this.#token ?? this.#presentedToken;
  }

  /**
   * The LSN reads of `contract` must reach: max(token, pin, barrier, read floor), or `null`.
   */
  requiredLsn(contract: Contract = this.#contract): bigint | null {
    // Read-your-writes keeps the read floor too: what the session read under monotonic (see
    // `decide`). Bounded-staleness and eventual reads do not.
    const level = contract.level;
    const keepsFloor = level === 'monotonic' || level === 'causal' || level === 'read-your-writes';
    const known = maxLsn(maxLsn(this.#tokenLsn(), this.#pinLsn), this.#barrierLsn);
    return maxLsn(known, keepsFloor ? this.#floor : null);
  }

  /**
   * Reports the primary position observed for a `barrier` decision: `lsn` must come from a
   * statement sent at or after the decision's `since` (a monitor sample or
   * `pg_current_wal_lsn()`), so that it covers every write acknowledged before then. Later
   * reads of the request need a node that has replayed it. `source` says how it was obtained
   * (`monitor`: a sample already taken, `query`: a primary round trip, `shared`: another
   * request's round trip).
   *
   * @example
   * ```ts
   * const d = freshness.route();
   * if (d.kind === 'barrier') freshness.observedBarrier(await primaryPositionAfter(d.since), 'query');
   * ```
   */
  observedBarrier(lsn: bigint, source: BarrierSource): void {
    const env = this.#env;
    const request = this.#routing();
    const cause = this.#barrierCause ?? 'hint-no-lsn';
    env.topology.observePrimaryLsn(lsn);
    request.barrierLsn = lsn;
    request.checkAllowed = true;
    // Observed after the request arrived, so after every presented token was issued: it
    // bounds what the client read on the replicas they name (a claim not yet made included).
    if (this.#claims !== null) {
      this.#floor = maxLsn(this.#floor, lsn);
      this.#claims = null;
    }
    // A token ahead of this instance's sample only needed a fresh look at the primary; it
    // stays the requirement (the barrier would demand more than the client saw).
    if (cause !== 'future-lsn') {
      this.#barrierLsn = maxLsn(this.#barrierLsn, lsn);
      request.barrierCause = cause;
    }
    env.telemetry.barrier(cause, source, lsn, this.#span());
  }

  /**
   * Before sending the statement of a `primary` decision with `fallback: 'primary'` (a fallback
   * the budget admitted): `true` at once, or a promise of whether a slot came free in time. The
   * adaptive budget keeps at most `limit × 100 ms` fallbacks in flight; a fallback that found
   * no slot within 100 ms is shed: answer it as a `FreshnessUnavailableError` (503). After
   * `true`, call {@link fallbackEnded} once the statement ended, answered or failed.
   *
   * @example
   * ```ts
   * if (decision.kind === 'primary' && decision.fallback === 'primary') {
   *   const slot = freshness.fallbackSlot(decision);
   *   if (slot !== true && !(await slot))
   *     throw new FreshnessUnavailableError(decision.reason, 1);
   *   try { await primary.query(sql); } finally { freshness.fallbackEnded(); }
   * }
   * ```
   */
  fallbackSlot(decision: Decision): true | Promise<boolean> {
    const budget = this.#env.decideContext.budget;
    if (budget.enter === undefined) return true;
    // The budget's priority: anonymous requests and tokens the primary has not reached are `low`.
    const low = this.#routing().anonymous || decision.reason === 'future-lsn';
    return budget.enter(low ? 'low' : 'normal');
  }

  /** Reports that the statement of a fallback that got a slot ({@link fallbackSlot}) ended. */
  fallbackEnded(): void {
    this.#env.decideContext.budget.release?.();
  }

  /**
   * Reports that the primary position for a `barrier` decision could not be observed: the
   * next decision sends the read to the primary within the budget, or fails closed.
   */
  barrierFailed(): void {
    this.#routing().barrierFailed = true;
  }

  /**
   * The latest token issued in this request (the value of the `X-Freshness-Token` response
   * header), or `null` before any.
   */
  get token(): string | null {
    return this.#token;
  }

  /**
   * The commit LSN of this request's latest write, in PostgreSQL's text form
   * (`'16/B374D848'`), or `null` before any write: what the response's token states, without
   * decoding it (for logs, outbox rows or messages to other services).
   *
   * @example
   * ```ts
   * await req.db.query('INSERT INTO cases (title) VALUES ($1)', [title]);
   * logger.info({ lsn: req.freshness.commitLsn }, 'case created');
   * ```
   */
  get commitLsn(): string | null {
    return this.#commitLsn === null ? null : formatLsn(this.#commitLsn);
  }

  /**
   * Binds this request to a session key learned while handling it — the user id after
   * sign-up or login, for clients that send no token and no cookie (an `Authorization`
   * header only). A write already made in this request is pinned under the key; later writes
   * pin under it and later reads follow the session's pin, exactly as if the adapter's
   * `sessionKey` resolver had returned the key. Resolves once the session's pin is read and
   * any earlier write of this request is pinned; a failing pin store is counted, never thrown.
   *
   * @example
   * ```ts
   * app.post('/users', async (req, res) => {
   *   const { rows } = await req.db.query('INSERT INTO users (email) VALUES ($1) RETURNING id', [email]);
   *   await req.freshness.bindSession(rows[0].id); // the next GET /user with this Authorization sees it
   *   res.status(201).json({ token: sign(rows[0].id) });
   * });
   * ```
   */
  async bindSession(sessionKey: string | number): Promise<void> {
    if ((typeof sessionKey !== 'string' && typeof sessionKey !== 'number') || sessionKey === '') {
      throw new TypeError('bindSession(sessionKey) expects a non-empty string or a number');
    }
    const env = this.#env;
    const hash = env.hashSessionKey(String(sessionKey));
    if (hash === this.#sessionHash) return;
    this.#sessionHash = hash;
    // A request with a session is no longer anonymous (budget priority); routing state not
    // made yet derives it from the session.
    if (this.#route !== null) this.#route.anonymous = false;
    // Another session: its sticky node is not this one's.
    this.#pinNode = null;
    this.#pinTtlMs = 0;
    const store = env.pinStore;
    if (store === null) return;
    try {
      const pin = await storeCall(store.get(hash), env.storeTimeoutMs, 'get');
      if (this.#sessionHash !== hash) return;
      // The store cannot vouch that the bound session's writes are all in it.
      if (pinIncomplete(env, hash)) this.#storeLost();
      this.#pinLsn = maxLsn(this.#pinLsn, pin?.lsn ?? null);
      this.#pinNode = pin?.node ?? null;
      this.#pinTtlMs = pin?.ttlMs ?? 0;
      if (env.readPinTtlMs === null && pin?.lsn != null) this.#routing().pinnedPrimary = true;
    } catch (error) {
      env.telemetry.storeFailed('get', error, this.#span());
      // The bound session's pin is unknown: its earlier writes may be anywhere up to the
      // primary's position now (a barrier).
      this.#storeLost();
    }
    if (this.#commitLsn !== null) {
      await this.#extendPin({ lsn: this.#commitLsn, node: null }, env.pinTtlMs);
    }
  }

  /** The `X-Freshness-Route` value so far, or `null` before the first routed statement. */
  get servedBy(): string | null {
    return this.#routeHeader;
  }

  /**
   * Decides where the next read goes. Synchronous, no I/O. Handle every `kind`:
   * `primary`/`replica` run the read; `check` refreshes the node's position
   * (`topology.observeReplayLsn`) then calls `route` again; `wait` waits for the node to reach
   * `lsn` (reporting progress the same way) then calls `route` again; `error` throws
   * `new FreshnessUnavailableError(d.reason, d.retryAfterSeconds)`.
   */
  route(options?: RouteOptions): Decision {
    const env = this.#env;
    const now = env.clock.now();
    const request = this.#routing(now);
    const contract = options?.contract ?? this.#contract;
    request.contract = contract;
    request.inTransaction = options?.inTransaction === true;
    request.locking = options?.locking === true;
    const used = request.requestReplica;
    if (
      used !== null &&
      (used.health === 'down' || used.health === 'quarantined' || used.circuit !== 'closed')
    ) {
      request.requestReplica = null;
      if (this.#readOnReplica) {
        // The request's replica died after serving it. What it read is bounded by the
        // primary's position observed from now on: the rest of the request needs a node at
        // least that far (no time travel).
        request.replicaLostAt = now;
        request.barrierLsn = null;
        request.checkAllowed = true;
        request.waitAllowed = true;
        this.#readOnReplica = false;
      }
    }
    request.requiredLsn = this.requiredLsn(contract);
    request.stickyRoute = this.#stickyRoute();

    if (this.#waitStartedAt !== null) {
      const node = this.#waitNode;
      const caughtUp =
        node !== null && node.replayLsn !== null && request.requiredLsn !== null
          ? node.replayLsn >= request.requiredLsn
          : false;
      env.telemetry.waited(now - this.#waitStartedAt, caughtUp);
      this.#waitStartedAt = null;
    }

    env.topology.noteDemand();
    const decision = decide(request, env.decideContext);
    this.#routedAt = now;
    request.fallbackFrom = 0;
    switch (decision.kind) {
      case 'check':
        request.checkAllowed = false;
        break;
      case 'barrier':
        this.#barrierCause = decision.reason;
        break;
      case 'wait':
        request.waitAllowed = false;
        request.fallbackFrom = decision.resumeAt;
        this.#waitStartedAt = now;
        this.#waitNode = decision.node;
        break;
      case 'replica':
        request.requestReplica = decision.node;
        this.#setRoute(decision.route);
        if (decision.stale || contract.level === 'bounded') {
          if (decision.lagMs !== null)
            this.#setHeader(HEADER_LAG_MS, String(Math.round(decision.lagMs)));
        }
        break;
      case 'primary':
        request.requestOnPrimary = true;
        this.#setRoute('primary');
        break;
      case 'error':
        break;
    }
    env.telemetry.decision(contract, decision, request.requiredLsn, this.#span());
    return decision;
  }

  /**
   * Whether the data layer should measure the node's position after running `decision`
   * and pass it to {@link observedRead}: true for monotonic/causal reads on the primary, whose
   * floor the engine cannot otherwise bound. Replica reads are kept monotonic by stickiness
   * instead: a session-key session's through its pin, a token-only client's through the
   * replica its next token names (no extra statement).
   */
  needsReadBound(decision: Decision, contract: Contract = this.#contract): boolean {
    if (contract.level !== 'monotonic' && contract.level !== 'causal') return false;
    if (decision.kind === 'primary') return true;
    // A token-only client's replica read: the next token names the replica instead, which
    // needs a lower bound of what the read saw (the replica's known position) and a cluster
    // to name in the token.
    return (
      decision.kind === 'replica' &&
      this.#sessionHash === null &&
      (decision.node.replayLsn === null || this.#env.topology.primary.clusterId === null)
    );
  }

  /**
   * Reports that a read ran as `decision` decided. Under monotonic/causal it raises the
   * session's read floor, issues an updated token and records the session's node in the
   * pin store when it changed. Never rejects.
   *
   * `lsn` must be an upper bound of what the read could see: the node's position measured
   * after the statement (`pg_last_wal_replay_lsn()` on a replica, `pg_current_wal_lsn()` on
   * the primary). Without it the engine uses a monitor sample taken after the decision, if
   * any; a cached position from before the read is not a bound (the node may have moved on
   * before the statement took its snapshot), so it is never used.
   */
  observedRead(decision: Decision, options?: { lsn?: bigint; contract?: Contract }): Promise<void> {
    const contract = options?.contract ?? this.#contract;
    if (decision.kind === 'replica') this.#readOnReplica = true;
    // Most reads leave nothing to record: they share one settled promise.
    if (decision.kind !== 'primary' && decision.kind !== 'replica') return SETTLED;
    if (contract.level !== 'monotonic' && contract.level !== 'causal') return SETTLED;
    return this.#observedSessionRead(decision, contract, options);
  }

  async #observedSessionRead(
    decision: Decision & { kind: 'primary' | 'replica' },
    contract: Contract,
    options: { lsn?: bigint; contract?: Contract } | undefined,
  ): Promise<void> {
    const env = this.#env;
    const request = this.#routing();
    const p = env.topology.primary;
    let bound: bigint | null = options?.lsn ?? null;
    // A measured position is newer than the monitor's primary sample, and no replica is ahead
    // of its primary: without this a floor taken from this read would look like a future LSN.
    if (bound !== null) env.topology.observePrimaryLsn(bound);
    // A token-only client's replica read: its token names the replica instead of a bound.
    const claim = bound === null && decision.kind === 'replica' && this.#sessionHash === null;
    if (bound === null && !claim && decision.kind === 'replica') {
      const node = decision.node;
      if (node.replayLsnAt !== null && node.replayLsnAt >= this.#routedAt) bound = node.replayLsn;
    }
    // A replica never gets ahead of its primary, so a primary sample taken after the read
    // bounds a replica read too.
    if (bound === null && !claim && p.currentLsnAt !== null && p.currentLsnAt >= this.#routedAt)
      bound = p.currentLsn;

    const tokenLsn = this.#tokenLsn();
    if (
      decision.reason === 'future-lsn' &&
      options?.lsn !== undefined &&
      tokenLsn !== null &&
      options.lsn < tokenLsn
    ) {
      // The primary itself is behind the token (restore, data loss): the token's LSN can
      // never be reached, so it is replaced rather than followed.
      request.tokenLsn = null;
      this.#replaceToken = true;
    }

    const jobs: Promise<void>[] = [];
    if (bound !== null) {
      this.#floor = maxLsn(this.#floor, bound);
      const lsn = maxLsn(this.#floor, maxLsn(this.#pinLsn, this.#tokenLsn())) as bigint;
      // Only when the client would learn something: it already holds its token's LSN.
      const clientHas = this.#issuedLsn ?? this.#tokenLsn();
      if (clientHas === null || lsn > clientHas) jobs.push(this.#issue(lsn));
    } else if (claim && decision.kind === 'replica') {
      const job = this.#claim(decision.route, decision.node, contract);
      if (job !== undefined) jobs.push(job);
    }
    const hash = this.#sessionHash;
    const readTtl = env.readPinTtlMs;
    if (hash !== null && env.pinStore !== null && readTtl !== null && !request.storeUnavailable) {
      const route = decision.route;
      if (bound !== null && (this.#pinLsn === null || bound > this.#pinLsn)) {
        // A bounded read moves the floor itself, so stickiness is only a preference.
        jobs.push(
          this.#extendPin(
            { lsn: bound, node: decision.kind === 'replica' ? route : null },
            readTtl,
          ),
        );
      } else if (bound === null && (route !== this.#pinNode || this.#pinTtlMs < readTtl / 2)) {
        // Unbounded read: the session must stick to this node. Written only when the node
        // changes (or the pin is half-way to expiry), not on every read.
        jobs.push(this.#extendPin({ lsn: null, node: route }, readTtl));
      }
    }
    if (jobs.length > 0) await Promise.all(jobs);
  }

  /**
   * Reports a committed write. Later statements of the request go to the primary. Resolves
   * once the token is signed and set on the response (header and cookie) and the session's
   * pin is extended; a failing pin store is counted, never thrown: the write succeeded.
   */
  async wrote(commitLsn: bigint): Promise<void> {
    const env = this.#env;
    this.#routing().wrote = true;
    env.topology.observePrimaryLsn(commitLsn);
    this.#setRoute('primary');
    // The commit LSN was captured after the commit, so it bounds everything the session
    // read before: it is the whole new floor, and the sticky node no longer matters.
    this.#floor = maxLsn(this.#floor, commitLsn);
    this.#commitLsn = maxLsn(this.#commitLsn, commitLsn);
    const lsn = maxLsn(this.#issuedLsn, commitLsn) as bigint;
    const jobs: Promise<void>[] = [this.#issue(lsn)];
    if (this.#sessionHash !== null && env.pinStore !== null) {
      jobs.push(this.#extendPin({ lsn: commitLsn, node: null }, env.pinTtlMs));
    }
    await Promise.all(jobs);
  }

  /**
   * After a token-only client's monotonic/causal read on `route` without a measured bound: a
   * token naming the replica, whose LSN is what the read was known to reach. The client's
   * next reads stick to that replica, or leave it after a barrier (see `#stickyRoute`).
   * Reissued when the replica or the LSN changes, or a new second began (the claim covers
   * reads up to the end of its `iat` second).
   */
  #claim(route: string, node: ReplicaState, contract: Contract): Promise<void> | undefined {
    const lsn = maxLsn(this.requiredLsn(contract), node.replayLsn);
    if (lsn === null) return undefined;
    const second = Math.floor(this.#env.clock.now() / 1000);
    const has =
      this.#issuedNode !== null
        ? { node: this.#issuedNode, iat: this.#issuedIat, lsn: this.#issuedLsn }
        : this.#replaceToken
          ? null
          : {
              node: this.#startToken?.node ?? null,
              iat: this.#startToken?.iat ?? null,
              lsn: this.#tokenLsn(),
            };
    if (
      has !== null &&
      has.node === route &&
      has.iat === second &&
      has.lsn !== null &&
      has.lsn >= lsn
    )
      return undefined;
    return this.#issue(maxLsn(lsn, has?.lsn ?? null) as bigint, route);
  }

  async #issue(lsn: bigint, node?: string): Promise<void> {
    const env = this.#env;
    const cid = env.topology.primary.clusterId;
    // A token must name its cluster; until the monitor has identified it there is none to give.
    if (cid === null) return;
    const sid = this.#sessionHash ?? undefined;
    const signed = await env.codec.sign({ lsn, cid, sid, node });
    if (this.#issuedLsn !== null && this.#issuedLsn > lsn) return;
    this.#issuedLsn = lsn;
    this.#issuedNode = node ?? null;
    this.#issuedIat = signed.iat;
    this.#token = signed.token;
    this.#setHeader(HEADER_TOKEN, signed.token);
    if (env.cookie !== null) {
      this.#setHeader(
        'Set-Cookie',
        serializeCookie(env.cookie, signed.token, signed.maxAgeSeconds, this.#isSecure()),
      );
    }
  }

  /**
   * The pin store failed, or cannot vouch for the pin it gave: read at a barrier (the primary
   * with `onStoreError: 'primary'`), unless the app chose `'token-only'`.
   */
  #storeLost(): void {
    const env = this.#env;
    if (env.storeErrorTokenOnly) return;
    const request = this.#routing();
    request.storeUnavailable = true;
    if (env.storeErrorToPrimary) request.barrierFailed = true;
  }

  async #extendPin(
    update: { lsn: bigint | null; node: string | null },
    ttlMs: number,
  ): Promise<void> {
    const env = this.#env;
    const store = env.pinStore as PinStore;
    const key = this.#sessionHash as string;
    try {
      await storeCall(store.extend(key, { ...update, ttlMs }), env.storeTimeoutMs, 'extend');
      this.#pinLsn = maxLsn(this.#pinLsn, update.lsn);
      this.#pinNode = update.node;
      this.#pinTtlMs = ttlMs;
    } catch (error) {
      const store = env.store;
      if (store.failedAt.size >= MAX_FAILED_PINS) {
        store.failedAt.clear();
        store.everyoneAt = env.clock.now();
      }
      store.failedAt.set(key, env.clock.now());
      env.telemetry.storeFailed('extend', error, this.#span());
      const hold = env.pinStore?.unpinnedHoldMs ?? 0;
      // Other instances learn that this one is missing from the store only after a while; the
      // client must not be able to ask them about this write before then.
      if (update.lsn !== null && hold > 0) await sleep(hold);
    }
  }

  /**
   * The route a monotonic/causal read must stick to: the session pin's node, the replica the
   * client's tokens name, or — when they name different ones — a route no replica has (the
   * read then needs a barrier). Claims the monitor's primary sample has overtaken are bounded
   * by it: they become part of the read floor instead. Sets `stickySince`.
   */
  #stickyRoute(): string | null {
    const request = this.#routing();
    const pinned = this.#sessionHash === null ? null : this.#pinNode;
    let claims = this.#claims;
    if (claims === undefined) {
      const token = this.#startToken as StartToken;
      claims = [{ node: token.node as string, since: claimSince(token.iat) }];
      this.#claims = claims;
    }
    if (claims === null) {
      request.stickySince = null;
      return pinned;
    }
    const p = this.#env.topology.primary;
    if (p.sampleSentAt !== null && p.currentLsn !== null) {
      const sampledAt = p.sampleSentAt;
      const first = pinned ?? claims[0]?.node;
      const agree = claims.every((c) => c.node === first);
      // One replica named by every claim (and the pin): sticking to it costs nothing, keep it.
      // Otherwise the claims the sample has overtaken are folded into the floor.
      if (!agree && claims.some((c) => c.since <= sampledAt)) {
        this.#floor = maxLsn(this.#floor, p.currentLsn);
        claims = claims.filter((c) => c.since > sampledAt);
        this.#claims = claims.length > 0 ? claims : null;
        if (this.#claims === null) {
          request.stickySince = null;
          return pinned;
        }
      }
    }
    let since = Number.NEGATIVE_INFINITY;
    let node: string | null = pinned;
    let conflict = false;
    for (const c of claims) {
      if (c.since > since) since = c.since;
      if (node === null) node = c.node;
      else if (node !== c.node) conflict = true;
    }
    request.stickySince = since;
    return conflict ? CLAIMS_DISAGREE : node;
  }

  #setRoute(route: string): void {
    if (this.#routeHeader === 'primary' || this.#routeHeader === route) return;
    this.#routeHeader = route;
    this.#setHeader(HEADER_ROUTE, route);
  }

  #setHeader(name: string, value: string): void {
    this.#headers ??= {};
    this.#headers[name] = value;
    const sink = this.#sink;
    if (sink !== undefined) {
      try {
        sink.setHeader(name, value);
      } catch {
        // Headers already sent (a streaming response): the values stay readable on `headers`.
      }
    }
  }

  /**
   * The request's routing state, made at its first use: a request that runs no statement (a
   * cached page, a health check, a route that only authenticates) never pays for it, nor for
   * a clock read. Its `startedAt` is then the first statement's time rather than the
   * request's arrival: every use of it asks for a position observed at or after it, so a later
   * time can only ask for a newer one.
   */
  #routing(now?: number): RouteRequest {
    if (this.#route !== null) return this.#route;
    // Filled in place: the engine's decisions read an object of one shape on every request.
    const request = routeRequest(this.#contract);
    const token = this.#startToken;
    const lsn = token === null ? null : token.lsn;
    request.readAfterWrite = this.readAfterWrite;
    request.tokenLsn = lsn;
    request.tokenIssuedBy = token === null ? Number.NEGATIVE_INFINITY : (token.iat + 1) * 1000;
    request.startedAt = now ?? this.#env.clock.now();
    request.pinnedPrimary = this.#pinnedPrimary;
    request.storeUnavailable = this.#storeUnavailable;
    request.lsnUnknown = this.#lsnUnknown;
    request.barrierFailed = this.#storeUnavailable && this.#env.storeErrorToPrimary;
    request.anonymous = lsn === null && this.#sessionHash === null;
    this.#route = request;
    return request;
  }

  /** The token's LSN as the request uses it (dropped when the primary is behind it). */
  #tokenLsn(): bigint | null {
    if (this.#route !== null) return this.#route.tokenLsn;
    return this.#startToken === null ? null : this.#startToken.lsn;
  }

  #isSecure(): boolean {
    const secure = this.#secure;
    return secure === undefined ? this.#sink?.secure?.() === true : isSecure(secure);
  }

  #span(): Span | undefined {
    return this.#startSpan ?? trace.getSpan(context.active());
  }
}

const SETTLED: Promise<void> = Promise.resolve();
const NO_COOKIES: readonly string[] = [];

/** Sessions whose failed pin writes are remembered one by one (then: all sessions at once). */
export const MAX_FAILED_PINS = 10_000;

/** How a barrier's primary position was obtained. */
export type BarrierSource = 'monitor' | 'query' | 'shared';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Whether a pin just read from the store may lack writes of the session: the store cannot
 * vouch for it (it lost state, another instance is cut off), it lost pins less than one
 * `pinTtl` ago, or a pin write of this session failed less than one `pinTtl` ago. Call it after
 * the read, so that a loss the read found counts. Internal.
 */
export function pinIncomplete(env: RequestEnvironment, hash: string): boolean {
  const now = env.clock.now();
  const vouched = storeVouches(env, now);
  const failedAt = env.store.failedAt.get(hash);
  if (failedAt !== undefined && now - failedAt >= env.pinTtlMs) env.store.failedAt.delete(hash);
  return (
    !vouched ||
    now - env.store.everyoneAt < env.pinTtlMs ||
    (failedAt !== undefined && now - failedAt < env.pinTtlMs)
  );
}

/**
 * Whether the pin store vouches that a missing pin means "no write" (always, for a store
 * without {@link PinStore.vouch}). A new store epoch (it lost pins) restarts the engine's
 * distrust window, one `pinTtl` long, for every session. Internal.
 */
export function storeVouches(env: RequestEnvironment, now: number): boolean {
  const store = env.pinStore;
  if (store === null || typeof store.vouch !== 'function') return true;
  let vouch: PinStoreVouch;
  try {
    vouch = store.vouch();
  } catch {
    return false;
  }
  if (env.store.epoch !== vouch.epoch) {
    if (env.store.epoch !== null) env.store.everyoneAt = now;
    env.store.epoch = vouch.epoch;
  }
  return vouch.complete;
}

/**
 * A pin store call bounded by the engine's `pinStoreTimeout`, or as it is when the store
 * bounds its calls itself (`ms` null).
 */
export function storeCall<T>(
  promise: Promise<T>,
  ms: number | null,
  operation: 'get' | 'extend',
): Promise<T> {
  if (ms === null) return promise;
  return withTimeout(
    promise,
    ms,
    () => new StoreError(operation, { message: `Pin store ${operation} timed out after ${ms}ms` }),
  );
}
