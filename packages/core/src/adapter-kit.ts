import { checkOptions } from './check-options.js';
import { type Contract, type ContractInput, defineContract } from './contract.js';
import type { BeginInput, Engine } from './engine.js';
import { ConfigError } from './errors.js';
import {
  beginInput,
  type HeaderTarget,
  type IncomingHeaders,
  responseSink,
} from './http-headers.js';
import type { RequestFreshness, ResponseSink } from './request-freshness.js';

/** A session-key resolver's result; numbers (user ids) are used as their decimal text. */
export type SessionKey = string | number | null | undefined;

/** One started request, as the data layer hands it to an adapter. */
export interface StartedRequest<Db = unknown> {
  /** The request's freshness state. */
  readonly freshness: RequestFreshness;
  /** The request-scoped data source (`req.db`). */
  readonly db: Db;
  /** Runs `fn` with this request's data source as the current one (`currentDb()`). */
  run<T>(fn: () => T): T;
}

/**
 * What an adapter is given by the user: the `Freshgate` of `@freshgate/pg` (or any data layer
 * with the same shape).
 */
export interface FreshgateHost<Db = unknown> {
  readonly engine: Pick<Engine, 'defaultContract'>;
  begin(input?: BeginInput): StartedRequest<Db> | Promise<StartedRequest<Db>>;
}

/** The options every adapter shares. */
export interface AdapterOptions<Req> {
  /** Contract of routes that declare none. Default: the engine's `defaultContract`. */
  contract?: ContractInput | Contract;
  /** Stable key of the client session, for server-side pins. Default: none (tokens only). */
  sessionKey?: (req: Req) => SessionKey | PromiseLike<SessionKey>;
  /** Replaces freshgate's own error responses; its signature is the adapter's. */
  onError?: unknown;
}

/** How an adapter reads its framework's request and writes its response headers. */
export interface RequestIO<Req, Res> {
  headers(req: Req): IncomingHeaders;
  /**
   * The request came over https (the cookie gets `Secure` and the `__Host-` prefix). Asked
   * only when a cookie is written.
   */
  secure(req: Req): boolean;
  /** The response's header methods; `append` must keep the application's `Set-Cookie` values. */
  response(res: Res): HeaderTarget;
}

/** What {@link createAdapterKit} validated and what it does per request. */
export interface AdapterKit<Req, Res, Db> {
  readonly host: FreshgateHost<Db>;
  /** The adapter's default contract (its `contract` option, else the engine's). */
  readonly defaultContract: Contract;
  /**
   * Starts the request: resolves the session key, begins it (token, cookie, hint, pin), wires
   * its response headers, then calls `enter` inside {@link StartedRequest.run} — synchronously
   * when nothing has to be awaited. Any error (a rejected token in strict mode, a throwing
   * session-key resolver) goes to `fail`, never both. `arg` (say, the framework's `next`) is
   * passed on to both, so that an adapter needs no closure per request.
   */
  start<A = undefined>(
    req: Req,
    res: Res,
    contract: Contract,
    enter: (started: StartedRequest<Db>, req: Req, arg: A) => void,
    fail: (error: unknown, req: Req, res: Res, arg: A) => void,
    arg?: A,
  ): void;
}

/**
 * The response sink of one request, made when the first header is set: most requests set
 * none, and those that do not pay for the framework's header target. It also tells whether
 * the request came over https, asked only when a cookie is written.
 */
class LazySink<Req, Res> implements ResponseSink {
  readonly #io: RequestIO<Req, Res>;
  readonly #req: Req;
  readonly #res: Res;
  #sink: ResponseSink | undefined;

  constructor(io: RequestIO<Req, Res>, req: Req, res: Res) {
    this.#io = io;
    this.#req = req;
    this.#res = res;
  }

  secure(): boolean {
    return this.#io.secure(this.#req);
  }

  setHeader(name: string, value: string): void {
    this.#sink ??= responseSink(this.#io.response(this.#res));
    this.#sink.setHeader(name, value);
  }
}

/** Whether `value` is a promise (or any thenable): adapters keep the synchronous path free of them. */
export function isPromise<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/**
 * Everything a framework adapter shares, validated once when the adapter is created: the
 * request-start glue (session key → begin → response headers → current data source) and the
 * options' checks. An adapter then only translates its framework's request and response.
 *
 * @throws {ConfigError} naming the option, for a wrong host, an unknown option or a bad value.
 * @example
 * ```ts
 * import { createAdapterKit } from '@freshgate/core/adapter';
 * import type { IncomingMessage, ServerResponse } from 'node:http';
 *
 * export function freshgateNode(gate: FreshgateHost<FreshDataSource>, options = {}) {
 *   const kit = createAdapterKit(gate, options, {
 *     name: 'freshgateNode() options',
 *     io: {
 *       headers: (req: IncomingMessage) => req.headers,
 *       secure: () => false,
 *       response: (res: ServerResponse) => ({
 *         get: (n) => res.getHeader(n),
 *         set: (n, v) => res.setHeader(n, v),
 *         append: (n, v) => res.appendHeader(n, v),
 *         remove: (n) => res.removeHeader(n),
 *       }),
 *     },
 *   });
 *   return (req, res, handler) =>
 *     kit.start(req, res, kit.defaultContract, (started) => handler(started.db), (err) => {
 *       res.statusCode = 500;
 *       res.end();
 *     });
 * }
 * ```
 */
export function createAdapterKit<Req, Res, Db>(
  host: FreshgateHost<Db>,
  options: AdapterOptions<Req> | undefined,
  settings: {
    /** How the options are called in error messages, e.g. `freshgate() options`. */
    name: string;
    /** The option the host came from, named when it is wrong. Default `'freshgate'`. */
    hostOption?: string;
    /** Adapter-specific options accepted besides `contract`, `sessionKey` and `onError`. */
    extraOptions?: readonly string[];
    io: RequestIO<Req, Res>;
  },
): AdapterKit<Req, Res, Db> {
  if (typeof host?.begin !== 'function' || host.engine?.defaultContract === undefined) {
    throw new ConfigError(
      settings.hostOption ?? 'freshgate',
      'pass the Freshgate returned by `await createFreshgate(...)`',
    );
  }
  const opts = options ?? {};
  checkOptions(
    opts,
    ['contract', 'sessionKey', 'onError', ...(settings.extraOptions ?? [])],
    settings.name,
  );
  const { sessionKey } = opts;
  if (sessionKey !== undefined && typeof sessionKey !== 'function') {
    throw new ConfigError(
      'sessionKey',
      'expected a function of the request, e.g. req => req.session?.id ?? req.user?.id',
    );
  }
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw new ConfigError('onError', 'expected a function that answers the error response');
  }
  const defaultContract =
    opts.contract === undefined
      ? host.engine.defaultContract
      : defineContract(opts.contract, 'contract');
  const { io } = settings;
  const begin = (req: Req, res: Res, contract: Contract, key: SessionKey) =>
    host.begin(beginInput(io.headers(req), contract, key, undefined, new LazySink(io, req, res)));

  return {
    host,
    defaultContract,
    start(req, res, contract, enter, fail, given) {
      // Absent for adapters that pass none: then their callbacks take no `arg` either.
      const arg = given as Parameters<typeof enter>[2];
      let started: StartedRequest<Db> | PromiseLike<StartedRequest<Db>>;
      try {
        // Most requests start synchronously: no promise on the hot path unless a session key
        // resolver, a token to verify or a pin to read needs one.
        const key = sessionKey === undefined ? undefined : sessionKey(req);
        started = isPromise(key)
          ? key.then((resolved) => begin(req, res, contract, resolved))
          : begin(req, res, contract, key);
      } catch (error) {
        fail(error, req, res, arg);
        return;
      }
      if (isPromise(started)) {
        started.then(
          (s) => s.run(() => enter(s, req, arg)),
          (error: unknown) => fail(error, req, res, arg),
        );
      } else {
        const ready = started;
        ready.run(() => enter(ready, req, arg));
      }
    },
  };
}
