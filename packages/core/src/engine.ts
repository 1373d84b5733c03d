import { type Span, trace } from '@opentelemetry/api';
import { AdaptiveBudget, type PrimaryOutcome } from './adaptive-budget.js';
import { type BudgetStatus, type FallbackBudget, PrimaryBudget } from './budget.js';
import { type BudgetOptions, createBudget } from './budget-options.js';
import { checkOptions } from './check-options.js';
import { type Clock, systemClock } from './clock.js';
import {
  type Contract,
  type ContractInput,
  defineContract,
  parseReadAfterWrite,
} from './contract.js';
import {
  type CookieOptions,
  type CookieSettings,
  clearCookie,
  cookieSettings,
  isSecure,
  readCookies,
} from './cookie.js';
import type { DecideContext, SelectionPolicy } from './decide.js';
import { didYouMean } from './did-you-mean.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError, TokenRejectedError, type TokenRejectionReason } from './errors.js';
import { EventLoopDelay } from './loop-delay.js';
import type { Pin, PinStore } from './pin-store.js';
import {
  pinIncomplete,
  type RequestEnvironment,
  RequestFreshness,
  type ResponseSink,
  storeCall,
  type TokenNodeClaim,
} from './request-freshness.js';
import { sessionHashSecret, sessionKeyHasher } from './session-key.js';
import {
  type ReadCount,
  Telemetry,
  type TelemetryOptions,
  type TokenIgnoredReason,
} from './telemetry.js';
import { checkTokenCluster } from './timeline-history.js';
import {
  createTokenCodec,
  type TokenCodec,
  type TokenCodecOptions,
  type TokenKey,
  type VerifiedToken,
  type VerifyResult,
} from './token-codec.js';
import type { Topology } from './topology.js';

const NO_NAMES: readonly string[] = [];

/** Default contract of routes that declare none. */
export const DEFAULT_CONTRACT: ContractInput = 'read-your-writes';
/** Default pin lifetime, restarted by every write of the session. */
export const DEFAULT_PIN_TTL: Duration = '5s';
/** Default time allowed for one pin store call before `onStoreError` applies. */
export const DEFAULT_PIN_STORE_TIMEOUT: Duration = '50ms';
/** Default replica selection policy. */
export const DEFAULT_SELECTION: SelectionPolicy = 'least-lag';

/** Token settings of {@link EngineOptions}: the token codec's own options, under their own names. */
export type TokenOptions = Pick<
  TokenCodecOptions,
  'algorithms' | 'typ' | 'ttl' | 'maxLength' | 'cacheSize'
>;

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** The replica-state model the monitor fills. Required. */
  topology: Topology;
  /** HS256 secret (≥ 32 bytes). Give this or `keys`. */
  secret?: string | Uint8Array;
  /**
   * Key set (HS256/EdDSA/ES256); the first key with a private part signs, every key verifies
   * (rotation). At least one key must be able to sign.
   */
  keys?: readonly TokenKey[];
  /**
   * Token settings: `ttl` (default `'10m'`), `maxLength` (default 1024), `cacheSize` (verified
   * tokens cached, default 10 000), `algorithms` (default: those of the keys), `typ`.
   */
  token?: TokenOptions;
  /**
   * Reject tampered tokens (malformed, oversize, bad signature, algorithm, `typ`, claims)
   * with 400 instead of ignoring them. An expired token, one of another cluster (after a
   * failover) or signed with a key no longer listed (after a rotation) is ignored in either
   * mode: the client did nothing wrong. A rejected cookie is cleared in the response either way.
   * Default `false`.
   */
  strict?: boolean;
  /** Server-side pins for requests with a session key. Default: none (tokens only). */
  pinStore?: PinStore;
  /** Pin lifetime. Default `'5s'`. */
  pinTtl?: Duration;
  /**
   * `lsn`: a pinned session reads any replica that replayed its pin; `primary`: a pinned
   * session reads the primary until the pin expires. Default `'lsn'`.
   */
  pinMode?: 'lsn' | 'primary';
  /** Time allowed per pin store call. Default `'50ms'`. */
  pinStoreTimeout?: Duration;
  /**
   * Before a read falls back to the primary, it may wait this long for a replica predicted to
   * replay its required LSN within it (from the replica's lag and when the primary reached
   * the LSN); a replica predicted later sends the read to the primary at once. Trades read
   * latency for primary load; a contract's `waitAllowance` overrides it. Default `0`: never.
   */
  waitAllowance?: Duration;
  /**
   * When the pin store fails or times out for a request without a valid token (a request
   * with one routes by its token): `barrier` reads at the primary's position observed after
   * the request arrived, from a replica that has replayed it (see docs/degraded-modes.md);
   * `primary` routes the read to the primary within the budget; `token-only` carries on with
   * no known LSN (weaker: the session may miss its own writes). Default `'barrier'`.
   */
  onStoreError?: 'barrier' | 'primary' | 'token-only';
  /**
   * Primary fallback budget. Default: the adaptive limit, `{ floor: 200, ceiling: 5000,
   * initial: 200, tolerance: 2, reserve: 0.5 }` — fallbacks per second that grow while the
   * primary's statements keep their usual latency and fallbacks want more, and shrink fast when
   * they slow down or fail (see `AdaptiveBudget`). `{ rate, burst?, reserve? }`: a fixed rate
   * (burst default 400), as before. `false`: no limit. `reserve` is the share of the burst that
   * anonymous traffic (no valid token, no session key) cannot take.
   */
  budget?: BudgetOptions | false;
  /** Contract of requests that name none. Default `'read-your-writes'`. */
  defaultContract?: ContractInput;
  /** Replica selection policy. Default `'least-lag'`. */
  selection?: SelectionPolicy;
  /** Also carry the token in a cookie (`fg_fresh`). Default `false`. */
  cookie?: boolean | CookieOptions;
  /** Metrics and span hooks. */
  telemetry?: TelemetryOptions;
  /**
   * Hash applied to session keys before they reach the store or a token. Default: HMAC-SHA-256
   * keyed from the signing key (see `sessionKeyHasher`), so a `sid` or a pin key cannot be
   * matched against guessed session keys.
   */
  hashSessionKey?: (sessionKey: string) => string;
  /** Default: `systemClock` (the process clock). */
  clock?: Clock;
}

/** The newest valid token presented, and why another was not used. */
interface FoundToken {
  /** The valid token of the highest LSN (its claims are kept as verified, not copied). */
  best: VerifiedToken | null;
  /** The replica claims of every valid token, `null` when none has one. */
  claims: TokenNodeClaim[] | null;
  rejection: TokenIgnoredReason | null;
  token: string | null;
  /** Names of cookies that carried a rejected token (`null`: none). */
  rejectedCookies: string[] | null;
  /** Names of cookies that carried a valid token: never cleared (`null`: none). */
  validCookies: string[] | null;
  /** The first rejection strict mode answers with 400. */
  refusal: TokenRejectionReason | null;
  /** Every distinct token presented, header first. */
  presented: Presented[];
  /** What the client saw cannot be told (see `RouteRequest.lsnUnknown`). */
  lsnUnknown: boolean;
}

function foundToken(): FoundToken {
  return {
    best: null,
    claims: null,
    rejection: null,
    token: null,
    rejectedCookies: null,
    validCookies: null,
    refusal: null,
    presented: [],
    lsnUnknown: false,
  };
}

/** Rejections that are no fault of the client: never a 400, even in strict mode. */
const IGNORABLE: ReadonlySet<TokenRejectionReason> = new Set([
  'expired',
  'foreign-cluster',
  'unknown-kid',
]);

/** One presented token and where it came from (a cookie name, or `null` for the header). */
interface Presented {
  token: string;
  cookie: string | null;
}

/** What an adapter knows about a request when it starts. */
export interface BeginInput {
  /** The route's contract; default: the engine's `defaultContract`. */
  contract?: Contract | ContractInput;
  /** `X-Freshness-Token` request header. */
  token?: string | undefined;
  /** Raw `Cookie` request header (every `fg_fresh` cookie in it counts, as the header token does). */
  cookie?: string | undefined;
  /** `X-Read-After-Write` request header. */
  readAfterWrite?: string | readonly string[] | undefined;
  /** Stable identifier of the client session (hashed before use). */
  sessionKey?: string | number | null | undefined;
  /**
   * The request came over https (sets `Secure` on the cookie), or a function that tells,
   * called only when a cookie is written: most requests write none, and finding the protocol
   * can cost a framework a few lookups (Express' `req.secure` consults its trust-proxy
   * setting). Default: the sink's `secure()` when it has one, else `false`.
   */
  secure?: boolean | (() => boolean);
  /** Where response headers go. */
  sink?: ResponseSink;
  /** Span that receives the decision attributes. Default: the active span. */
  span?: Span;
}

/** The engine: everything a framework adapter needs, computed in one place. */
export interface Engine {
  /** The replica-state model the monitor fills. */
  readonly topology: Topology;
  /** The token codec built from `secret`/`keys` and `token` (signs and verifies tokens). */
  readonly codec: TokenCodec;
  /** The primary fallback budget, `null` with `budget: false`. */
  readonly budget: FallbackBudget | null;
  /** The contract of requests that name none (option `defaultContract`), validated. */
  readonly defaultContract: Contract;
  /**
   * Starts a request: verifies the token, reads the pin once, returns its freshness state —
   * synchronously when there is nothing to wait for (no token or an already verified one, no
   * pin to read), else as a promise. `await` works either way. Throws (or rejects with) a
   * `TokenRejectedError` for an invalid token in strict mode.
   */
  begin(input?: BeginInput): RequestFreshness | Promise<RequestFreshness>;
  /** Validates a contract (memoised for names). */
  contract(input: Contract | ContractInput): Contract;
  /** Read counters since start-up, one row per contract, route and reason. */
  reads(): ReadCount[];
  /** The hash of a session key as it is written to the pin store and a token's `sid`. */
  hashSessionKey(sessionKey: string): string;
  /**
   * Reports one statement the data layer ran on the primary — every one: writes, strong
   * reads, transactions and fallbacks — to the adaptive budget (a no-op for the others).
   *
   * @param latencyMs - from sending the statement to its answer (`performance.now()` pair).
   * @param queued - callers waiting for a primary pool connection (`pool.waitingCount`).
   */
  observePrimary(latencyMs: number, outcome: PrimaryOutcome, queued?: number): void;
  /** The budget's mode, limit, counters and what the adaptive limit measured, for status pages. */
  budgetStatus(): BudgetStatus;
  /** Records a synthetic read-after-write probe measurement of replica `node` (`freshgate.probe.delay`). */
  recordProbe(node: string, delayMs: number): void;
  /**
   * Starts measuring the event-loop delay that the adaptive budget subtracts from statement
   * latencies (without it, a busy process reads as a busy primary). Idempotent; the data
   * layer's `start()` calls it.
   */
  start(): void;
  /** Stops what `start()` started. Idempotent. */
  close(): void;
}

/** The option names of {@link EngineOptions}, for layers that pass options through. */
export const ENGINE_OPTIONS: readonly string[] = [
  'topology',
  'secret',
  'keys',
  'token',
  'strict',
  'pinStore',
  'pinTtl',
  'pinMode',
  'pinStoreTimeout',
  'waitAllowance',
  'onStoreError',
  'budget',
  'defaultContract',
  'selection',
  'cookie',
  'telemetry',
  'hashSessionKey',
  'clock',
];
const SELECTIONS: readonly SelectionPolicy[] = ['least-lag', 'least-in-flight', 'round-robin'];

function oneOf<T extends string>(
  value: T | undefined,
  allowed: readonly T[],
  fallback: T,
  option: string,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value)) {
    throw new ConfigError(
      option,
      `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}.${didYouMean(String(value), allowed)}`,
    );
  }
  return value;
}

/**
 * Creates the freshgate engine. Every option is validated here (a typo fails at start-up
 * with "did you mean"); keys are imported once.
 *
 * @example
 * ```ts
 * const topology = new Topology({ replicas: [{ name: 'r1' }] });
 * const engine = await createEngine({ topology, secret: process.env.FRESHGATE_SECRET!, pinStore: memoryPinStore() });
 * const freshness = await engine.begin({ contract: 'read-your-writes', token, sessionKey, sink });
 * const decision = freshness.route();
 * ```
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  checkOptions(options, ENGINE_OPTIONS, 'options');
  const topology = options.topology;
  if (topology === undefined || typeof topology.replicaByRoute !== 'function') {
    throw new ConfigError(
      'topology',
      'pass the Topology the monitor fills: `new Topology({ replicas })`',
    );
  }
  const clock = options.clock ?? systemClock;
  const strict = options.strict ?? false;
  const pinStore = options.pinStore ?? null;
  if (
    pinStore !== null &&
    (typeof pinStore.get !== 'function' || typeof pinStore.extend !== 'function')
  ) {
    throw new ConfigError('pinStore', 'a pin store needs get(key) and extend(key, update) methods');
  }
  if (
    pinStore !== null &&
    pinStore.timeoutMs !== undefined &&
    !(typeof pinStore.timeoutMs === 'number' && pinStore.timeoutMs >= 0)
  ) {
    throw new ConfigError(
      'pinStore',
      'timeoutMs, when present, must be the milliseconds the store bounds its calls to',
    );
  }
  if (pinStore !== null && pinStore.vouch !== undefined && typeof pinStore.vouch !== 'function') {
    throw new ConfigError(
      'pinStore',
      'vouch, when present, must be a method returning { epoch, complete }',
    );
  }
  const pinTtlMs = parseDuration(options.pinTtl ?? DEFAULT_PIN_TTL, 'pinTtl');
  if (pinTtlMs < 1) throw new ConfigError('pinTtl', 'must be greater than 0');
  const storeTimeoutMs = parseDuration(
    options.pinStoreTimeout ?? DEFAULT_PIN_STORE_TIMEOUT,
    'pinStoreTimeout',
  );
  const waitAllowanceMs = parseDuration(options.waitAllowance ?? 0, 'waitAllowance');
  const pinMode = oneOf(options.pinMode, ['lsn', 'primary'] as const, 'lsn', 'pinMode');
  const onStoreError = oneOf(
    options.onStoreError,
    ['barrier', 'primary', 'token-only'] as const,
    'barrier',
    'onStoreError',
  );
  const selection = oneOf(options.selection, SELECTIONS, DEFAULT_SELECTION, 'selection');
  const loopDelay = new EventLoopDelay();
  const budget = createBudget(options.budget, clock, loopDelay);
  const adaptive = budget instanceof AdaptiveBudget ? budget : null;
  const defaultContract = defineContract(
    options.defaultContract ?? DEFAULT_CONTRACT,
    'defaultContract',
  );
  let cookie: CookieSettings | null = null;
  if (options.cookie !== undefined && options.cookie !== false) {
    const settings = cookieSettings(options.cookie === true ? {} : options.cookie);
    if (typeof settings === 'string') throw new ConfigError('cookie', settings);
    cookie = settings;
  }
  if (options.hashSessionKey !== undefined && typeof options.hashSessionKey !== 'function')
    throw new ConfigError('hashSessionKey', 'expected a function');
  if (options.token !== undefined) {
    checkOptions(
      options.token,
      ['algorithms', 'typ', 'ttl', 'maxLength', 'cacheSize'],
      'token',
      'token.',
    );
  }
  // A verify-only key set would fail at the first write, long after start-up.
  if (Array.isArray(options.keys) && options.keys.length > 0) {
    const signs = options.keys.some(
      (key) =>
        key !== null &&
        typeof key === 'object' &&
        ('secret' in key || ('privateKey' in key && key.privateKey !== undefined)),
    );
    if (!signs) {
      throw new ConfigError(
        'keys',
        'no key can sign tokens: give the current key its `privateKey` (keys with only a `publicKey` verify tokens other instances signed)',
      );
    }
  }
  const codec = await createTokenCodec(
    { ...options.token, secret: options.secret, keys: options.keys, clock },
    'token.',
  );
  const hash =
    options.hashSessionKey ??
    sessionKeyHasher(sessionHashSecret(options.secret, options.keys, pinStore !== null));
  const telemetry = new Telemetry(options.telemetry);
  telemetry.watch(topology);
  // Without a budget every primary fallback passes (and is counted).
  const decideBudget: FallbackBudget =
    budget ?? new PrimaryBudget({ rate: Number.POSITIVE_INFINITY, clock });
  telemetry.watchBudget(decideBudget);
  const decideContext: DecideContext = {
    topology,
    budget: decideBudget,
    selection,
    cursor: { next: 0 },
    waitAllowanceMs,
    clock,
  };
  const env: RequestEnvironment = {
    topology,
    codec,
    decideContext,
    telemetry,
    clock,
    pinStore,
    pinTtlMs,
    readPinTtlMs: pinMode === 'primary' ? null : Math.max(pinTtlMs, codec.ttlMs),
    // A store that bounds its calls at least as tightly as the engine would needs no second
    // timer around each of them.
    storeTimeoutMs:
      pinStore?.timeoutMs !== undefined && pinStore.timeoutMs <= storeTimeoutMs
        ? null
        : storeTimeoutMs,
    storeErrorToPrimary: onStoreError === 'primary',
    storeErrorTokenOnly: onStoreError === 'token-only',
    hashSessionKey: hash,
    cookie,
    store: { failedAt: new Map(), everyoneAt: Number.NEGATIVE_INFINITY, epoch: null },
  };
  const named = new Map<string, Contract>();

  function contract(input: Contract | ContractInput): Contract {
    if (typeof input === 'string') {
      let c = named.get(input);
      if (c === undefined) {
        c = defineContract(input);
        named.set(input, c);
      }
      return c;
    }
    return defineContract(input);
  }

  function begin(input: BeginInput = {}): RequestFreshness | Promise<RequestFreshness> {
    const span = input.span ?? trace.getActiveSpan();
    const routeContract = input.contract === undefined ? defaultContract : contract(input.contract);
    const sessionHash =
      input.sessionKey != null && input.sessionKey !== '' ? hash(String(input.sessionKey)) : null;
    const needsPin = sessionHash !== null && pinStore !== null;
    const headerToken = input.token || undefined;
    const cookieHeader = cookie === null ? undefined : input.cookie || undefined;
    // The commonest request carries no token and has no pin to read: it starts with no
    // state to collect and no promise.
    let headerResult: VerifyResult | undefined;
    if (cookieHeader === undefined && !needsPin) {
      if (headerToken === undefined) {
        return newRequest(input, routeContract, sessionHash, span, null, undefined, false);
      }
      // The next commonest: one header token, verified before (or HS256), of the current
      // cluster. It alone sets the request's position: nothing to compare it with.
      headerResult = codec.verifyNow(headerToken);
      const cid = topology.primary.clusterId;
      if (headerResult?.ok === true && cid !== null && headerResult.cid === cid) {
        return newRequest(
          input,
          routeContract,
          sessionHash,
          span,
          null,
          undefined,
          false,
          headerToken,
          headerResult,
        );
      }
    }

    // Header and cookies can all be present and differ (another tab of the same browser wrote
    // since this tab last saw a token; an older cookie planted from a sibling subdomain, which
    // the browser sends first): every valid one is verified and the newest wins, so nothing a
    // third party adds can lower the required LSN. A token only ever raises it, so one issued
    // under another session key (the key changed at login) still counts: ignoring it could
    // only show the client the past.
    const found = foundToken();
    if (headerToken !== undefined) found.presented.push({ token: headerToken, cookie: null });
    if (cookie !== null && cookieHeader !== undefined) {
      const cookies = readCookies(cookieHeader, cookie.names);
      for (const c of cookies.values) {
        if (c.value !== '' && !found.presented.some((p) => p.token === c.value))
          found.presented.push({ token: c.value, cookie: c.name });
      }
      // More freshness cookies than a browser keeps: some were not read, so what the client
      // saw is unknown.
      if (cookies.overflow) found.lsnUnknown = true;
    }
    let uncached: Presented[] | null = null;
    for (const p of found.presented) {
      // The header token's result, when the path above already has it (an HMAC is not
      // checked twice).
      const result =
        p.cookie === null && headerResult !== undefined ? headerResult : codec.verifyNow(p.token);
      if (result !== undefined) consider(found, p, result);
      else if (uncached === null) uncached = [p];
      else uncached.push(p);
    }
    // A request with a token verified before, or an HS256 one (its HMAC is checked here, at
    // once), and no session pin to read starts without a promise: on the hot path every
    // promise costs, the more so with async context tracking on, and a burst of requests
    // each waiting on a verification keeps their state alive long enough to be promoted.
    if (uncached === null && !needsPin) {
      refuse(found, input);
      return newRequest(input, routeContract, sessionHash, span, found, undefined, false);
    }
    // Only the pin to read: one reaction to the store's answer, no async function (each
    // promise costs on the hot path, the more so with async context tracking on).
    if (uncached === null) {
      refuse(found, input);
      return withPin(input, routeContract, sessionHash as string, span, found);
    }
    return (async () => {
      for (const p of uncached) consider(found, p, await codec.verify(p.token));
      refuse(found, input);
      if (!needsPin) {
        return newRequest(input, routeContract, sessionHash, span, found, undefined, false);
      }
      return withPin(input, routeContract, sessionHash as string, span, found);
    })();
  }

  // The request once the session's pin is read. A failed read (or a pin the store cannot
  // vouch for) starts it as the store's `onStoreError` says.
  function withPin(
    input: BeginInput,
    routeContract: Contract,
    sessionHash: string,
    span: Span | undefined,
    found: FoundToken,
  ): Promise<RequestFreshness> {
    let read: Promise<Pin | undefined>;
    try {
      read = storeCall((pinStore as PinStore).get(sessionHash), env.storeTimeoutMs, 'get');
    } catch (error) {
      read = Promise.reject(error);
    }
    return read.then(
      (pin) =>
        newRequest(
          input,
          routeContract,
          sessionHash,
          span,
          found,
          pin,
          // A pin the store cannot vouch for is as good as a failed read.
          onStoreError !== 'token-only' && pinIncomplete(env, sessionHash),
        ),
      (error: unknown) => {
        telemetry.storeFailed('get', error, span);
        return newRequest(
          input,
          routeContract,
          sessionHash,
          span,
          found,
          undefined,
          onStoreError !== 'token-only',
        );
      },
    );
  }

  function newRequest(
    input: BeginInput,
    routeContract: Contract,
    sessionHash: string | null,
    span: Span | undefined,
    found: FoundToken | null,
    pin: Pin | undefined,
    storeUnavailable: boolean,
    // The header token alone, when it was all the request presented (no `found`).
    onlyToken?: string,
    verified?: VerifiedToken,
  ): RequestFreshness {
    return new RequestFreshness(env, {
      contract: routeContract,
      readAfterWrite: parseReadAfterWrite(input.readAfterWrite),
      token: verified ?? found?.best ?? null,
      // Absent for the lone header token: the request takes its claim from the token.
      tokenClaims: found?.claims,
      tokenRejection: found?.rejection ?? null,
      presentedToken: onlyToken ?? found?.token ?? null,
      sessionHash,
      pin,
      pinnedPrimary: pinMode === 'primary' && pin?.lsn != null,
      storeUnavailable,
      lsnUnknown: found?.lsnUnknown ?? false,
      secure: input.secure,
      clearCookies: found === null ? NO_NAMES : cookiesToClear(found),
      sink: input.sink,
      span,
    });
  }

  function consider(found: FoundToken, p: Presented, verified: VerifyResult): void {
    // The cluster is checked here rather than by the codec: a token of the parent timeline
    // may survive a failover (timeline-history.ts).
    const cid = topology.primary.clusterId;
    const result = checkTokenCluster(verified, cid, topology.lineage);
    // Before the monitor has identified the cluster, a token of any cluster would verify:
    // none is trusted (a tampered one is still refused), and a request that carries a valid
    // one reads as if its LSN were unknown.
    if (cid === null && result.ok) found.lsnUnknown = true;
    else useToken(found, p, result);
  }

  // An HttpOnly cookie cannot be dropped by the page's code: unless cleared here, a rejected
  // one would come back on every request for up to the token lifetime. A name that also
  // carried a valid token is left alone: clearing it would drop the client's own cookie
  // because of one planted under another path.
  function cookiesToClear(found: FoundToken): readonly string[] {
    const rejected = found.rejectedCookies;
    if (cookie === null || rejected === null) return NO_NAMES;
    return [...new Set(rejected)].filter((name) => !found.validCookies?.includes(name));
  }

  function refuse(found: FoundToken, input: BeginInput): void {
    if (found.refusal === null) return;
    if (input.sink !== undefined && cookie !== null) {
      for (const name of cookiesToClear(found)) {
        try {
          input.sink.setHeader('Set-Cookie', clearCookie(cookie, name, isSecure(input.secure)));
        } catch {
          // Headers already sent: nothing more to do.
        }
      }
    }
    throw new TokenRejectedError(found.refusal);
  }

  function useToken(found: FoundToken, presented: Presented, result: VerifyResult): void {
    const name = presented.cookie;
    if (result.ok) {
      if (found.best === null || result.lsn > found.best.lsn) {
        found.best = result;
        found.token = presented.token;
      }
      if (result.node !== undefined) {
        const claim = { node: result.node, iat: result.iat };
        if (found.claims === null) found.claims = [claim];
        else found.claims.push(claim);
      }
      if (name === null) return;
      if (found.validCookies === null) found.validCookies = [name];
      else found.validCookies.push(name);
      return;
    }
    found.rejection ??= result.reason;
    telemetry.tokenIgnored(result.reason);
    if (name !== null) {
      if (found.rejectedCookies === null) found.rejectedCookies = [name];
      else found.rejectedCookies.push(name);
    }
    if (strict && !IGNORABLE.has(result.reason)) found.refusal ??= result.reason;
  }

  return {
    topology,
    codec,
    budget,
    defaultContract,
    begin,
    contract,
    reads: () => telemetry.reads(),
    hashSessionKey: hash,
    observePrimary:
      adaptive === null
        ? () => {}
        : (latencyMs, outcome, queued) => adaptive.observe(latencyMs, outcome, queued),
    budgetStatus: () => decideBudget.status(),
    recordProbe: (node, delayMs) => telemetry.probed(node, delayMs),
    start: () => {
      if (adaptive !== null) loopDelay.start();
    },
    close: () => loopDelay.stop(),
  };
}
