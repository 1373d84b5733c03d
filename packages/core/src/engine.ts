import { type Span, trace } from '@opentelemetry/api';
import { PrimaryBudget } from './budget.js';
import { type Clock, systemClock } from './clock.js';
import {
  type Contract,
  type ContractInput,
  defineContract,
  parseReadAfterWrite,
} from './contract.js';
import { type CookieOptions, type CookieSettings, cookieSettings, readCookie } from './cookie.js';
import type { DecideContext, SelectionPolicy } from './decide.js';
import { checkKeys, didYouMean } from './did-you-mean.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError, TokenRejectedError } from './errors.js';
import type { Pin, PinStore } from './pin-store.js';
import { type Problem, toProblem } from './problem.js';
import {
  type RequestEnvironment,
  RequestFreshness,
  type ResponseSink,
  withTimeout,
} from './request-freshness.js';
import { type RouteListing, RouteRegistry } from './route-registry.js';
import { hashSessionKey } from './session-key.js';
import { Telemetry, type TelemetryOptions, type TokenIgnoredReason } from './telemetry.js';
import { checkTokenCluster } from './timeline-history.js';
import {
  createTokenCodec,
  type TokenAlgorithm,
  type TokenCodec,
  type TokenKey,
  type VerifyResult,
} from './token-codec.js';
import type { Topology } from './topology.js';

/** Default contract of routes that declare none. */
export const DEFAULT_CONTRACT: ContractInput = 'read-your-writes';
/** Default pin lifetime, restarted by every write of the session. */
export const DEFAULT_PIN_TTL: Duration = '5s';
/** Default time allowed for one pin store call before `onStoreError` applies. */
export const DEFAULT_PIN_STORE_TIMEOUT: Duration = '50ms';
/** Default replica selection policy. */
export const DEFAULT_SELECTION: SelectionPolicy = 'least-lag';

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** The replica-state model the monitor fills. Required. */
  topology: Topology;
  /** HS256 secret (≥ 32 bytes). Give this or `keys`. */
  secret?: string | Uint8Array;
  /** Key set (HS256/EdDSA/ES256); the first signing key signs. */
  keys?: readonly TokenKey[];
  /** Accepted token algorithms. Default: those of the keys. */
  algorithms?: readonly TokenAlgorithm[];
  /** Token lifetime. Default `'10m'`. */
  tokenTtl?: Duration;
  /** Longest accepted token, characters. Default 1024. */
  tokenMaxLength?: number;
  /** Verified tokens cached. Default 10 000. */
  tokenCacheSize?: number;
  /** Reject invalid tokens with 400 instead of ignoring them. Default `false`. */
  strict?: boolean;
  /** Server-side pins for requests with a session key. Default: none (tokens only). */
  pinStore?: PinStore;
  /** Pin lifetime. Default {@link DEFAULT_PIN_TTL}. */
  pinTtl?: Duration;
  /**
   * `lsn`: a pinned session reads any replica that replayed its pin; `primary`: a pinned
   * session reads the primary until the pin expires. Default `'lsn'`.
   */
  pinMode?: 'lsn' | 'primary';
  /** Time allowed per pin store call. Default {@link DEFAULT_PIN_STORE_TIMEOUT}. */
  pinStoreTimeout?: Duration;
  /**
   * When the pin store fails: `primary` routes the session's reads to the primary (never
   * weaker), `token-only` carries on with the token alone. Default `'primary'`.
   */
  onStoreError?: 'primary' | 'token-only';
  /** Primary fallback budget; `false` for no limit. Default `{ rate: 200, burst: 400 }`. */
  budget?: { rate?: number; burst?: number } | false;
  /** Contract of requests that name none. Default {@link DEFAULT_CONTRACT}. */
  defaultContract?: ContractInput;
  /** Replica selection policy. Default {@link DEFAULT_SELECTION}. */
  selection?: SelectionPolicy;
  /** Also carry the token in a cookie (`fg_fresh`). Default `false`. */
  cookie?: boolean | CookieOptions;
  /** Metrics and span hooks. */
  telemetry?: TelemetryOptions;
  /** Hash applied to session keys before they reach the store or a token. Default: SHA-256. */
  hashSessionKey?: (sessionKey: string) => string;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/** The newest valid token presented, and why another was not used. */
interface FoundToken {
  lsn: bigint | null;
  rejection: TokenIgnoredReason | null;
  token: string | null;
}

/** What an adapter knows about a request when it starts. */
export interface BeginInput {
  /** The route's contract; default: the engine's `defaultContract`. */
  contract?: Contract | ContractInput;
  /** `X-Freshness-Token` request header. */
  token?: string | undefined;
  /** Raw `Cookie` request header (the `fg_fresh` cookie is used when there is no header token). */
  cookie?: string | undefined;
  /** `X-Read-After-Write` request header. */
  readAfterWrite?: string | readonly string[] | undefined;
  /** Stable identifier of the client session (hashed before use). */
  sessionKey?: string | number | null | undefined;
  /** The request came over https (sets `Secure` on the cookie). */
  secure?: boolean;
  /** Where response headers go. */
  sink?: ResponseSink;
  /** Span that receives the decision attributes. Default: the active span. */
  span?: Span;
}

/** The engine: everything a framework adapter needs, computed in one place. */
export interface Engine {
  readonly topology: Topology;
  readonly codec: TokenCodec;
  readonly budget: PrimaryBudget | null;
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
  /** Declares a route's contract (validated now) and lists it in {@link Engine.routes}. */
  declareRoute(method: string, path: string, input: Contract | ContractInput): Contract;
  /** Declared routes, for the query classification table. */
  routes(): RouteListing[];
  /** Declared routes as a Markdown table. */
  routesMarkdown(): string;
  /** The `application/problem+json` response of a freshgate error, `null` for others. */
  problem(error: unknown): Problem | null;
}

const OPTION_KEYS = [
  'topology',
  'secret',
  'keys',
  'algorithms',
  'tokenTtl',
  'tokenMaxLength',
  'tokenCacheSize',
  'strict',
  'pinStore',
  'pinTtl',
  'pinMode',
  'pinStoreTimeout',
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
 * engine.declareRoute('GET', '/cases/:id', 'read-your-writes');
 * const freshness = await engine.begin({ contract: 'read-your-writes', token, sessionKey, sink });
 * const decision = freshness.route();
 * ```
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  if (options === null || typeof options !== 'object')
    throw new ConfigError('options', 'expected an options object');
  checkKeys(options, OPTION_KEYS, (key, hint) => {
    throw new ConfigError(key, hint);
  });
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
  const pinTtlMs = parseDuration(options.pinTtl ?? DEFAULT_PIN_TTL, 'pinTtl');
  if (pinTtlMs < 1) throw new ConfigError('pinTtl', 'must be greater than 0');
  const storeTimeoutMs = parseDuration(
    options.pinStoreTimeout ?? DEFAULT_PIN_STORE_TIMEOUT,
    'pinStoreTimeout',
  );
  const pinMode = oneOf(options.pinMode, ['lsn', 'primary'] as const, 'lsn', 'pinMode');
  const onStoreError = oneOf(
    options.onStoreError,
    ['primary', 'token-only'] as const,
    'primary',
    'onStoreError',
  );
  const selection = oneOf(options.selection, SELECTIONS, DEFAULT_SELECTION, 'selection');
  if (options.budget !== undefined && options.budget !== false) {
    checkKeys(options.budget, ['rate', 'burst'], (key, hint) => {
      throw new ConfigError(`budget.${key}`, hint);
    });
  }
  const budget = options.budget === false ? null : new PrimaryBudget({ ...options.budget, clock });
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
  const hash = options.hashSessionKey ?? hashSessionKey;
  if (typeof hash !== 'function') throw new ConfigError('hashSessionKey', 'expected a function');
  const codec = await createTokenCodec({
    secret: options.secret,
    keys: options.keys,
    algorithms: options.algorithms,
    ttl: options.tokenTtl,
    maxLength: options.tokenMaxLength,
    cacheSize: options.tokenCacheSize,
    clock,
  });
  const telemetry = new Telemetry(options.telemetry);
  telemetry.watch(topology);
  const decideContext: DecideContext = {
    topology,
    // Without a budget every primary fallback passes.
    budget: budget ?? new PrimaryBudget({ rate: Number.POSITIVE_INFINITY, clock }),
    selection,
    cursor: { next: 0 },
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
    storeTimeoutMs,
    cookie,
  };
  const registry = new RouteRegistry();
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
    const headerToken = input.token || undefined;
    const cookieToken = cookie !== null ? readCookie(input.cookie, cookie.name) : undefined;
    const sessionHash =
      input.sessionKey != null && input.sessionKey !== '' ? hash(String(input.sessionKey)) : null;

    // Header and cookie can both be present and differ (another tab of the same browser
    // wrote since this tab last saw a token): the newest valid one wins. A token only ever
    // raises the required LSN, so one issued under another session key (the key changed at
    // login) still counts: ignoring it could only show the client the past.
    const found: FoundToken = { lsn: null, rejection: null, token: null };
    // The cluster is checked here rather than by the codec: a token of the parent timeline
    // may survive a failover (timeline-history.ts).
    const cid = topology.primary.clusterId;
    const lineage = topology.lineage;
    const uncached: string[] = [];
    for (const token of headerToken === cookieToken ? [headerToken] : [headerToken, cookieToken]) {
      if (token === undefined || token === '') continue;
      const result = codec.verifyCached(token);
      if (result === undefined) uncached.push(token);
      else useToken(found, token, checkTokenCluster(result, cid, lineage));
    }
    const needsPin = sessionHash !== null && pinStore !== null;
    const start = (pin: Pin | undefined, storeUnavailable: boolean) =>
      new RequestFreshness(env, {
        contract: routeContract,
        readAfterWrite: parseReadAfterWrite(input.readAfterWrite),
        tokenLsn: found.lsn,
        tokenRejection: found.rejection,
        presentedToken: found.token,
        sessionHash,
        pin,
        pinnedPrimary: pinMode === 'primary' && pin?.lsn != null,
        storeUnavailable,
        secure: input.secure === true,
        sink: input.sink,
        span,
      });
    // The common request (no token, or one verified before; no session pin to read) starts
    // without a promise: on the hot path every promise costs, the more so with async context
    // tracking on.
    if (uncached.length === 0 && !needsPin) return start(undefined, false);
    return (async () => {
      for (const token of uncached)
        useToken(found, token, checkTokenCluster(await codec.verify(token), cid, lineage));
      if (!needsPin) return start(undefined, false);
      try {
        const pin = await withTimeout(pinStore.get(sessionHash), storeTimeoutMs, 'get');
        return start(pin, false);
      } catch (error) {
        telemetry.storeFailed('get', error, span);
        return start(undefined, onStoreError === 'primary');
      }
    })();
  }

  function useToken(found: FoundToken, token: string, result: VerifyResult): void {
    if (result.ok) {
      if (found.lsn === null || result.lsn > found.lsn) {
        found.lsn = result.lsn;
        found.token = token;
      }
      return;
    }
    found.rejection ??= result.reason;
    telemetry.tokenIgnored(result.reason);
    if (strict) throw new TokenRejectedError(result.reason);
  }

  return {
    topology,
    codec,
    budget,
    defaultContract,
    begin,
    contract,
    declareRoute: (method, path, input) => registry.declare(method, path, input),
    routes: () => registry.list(),
    routesMarkdown: () => registry.markdown(),
    problem: toProblem,
  };
}
