import type {
  Contract,
  ContractInput,
  FreshgateError,
  RequestFreshness,
  RouteTable,
  SessionKey,
} from '@freshgate/core';
import type { FreshgateHost } from '@freshgate/core/adapter';
import type { FreshDataSource, Freshgate } from '@freshgate/pg';
import type { FastifyReply, FastifyRequest } from 'fastify';

export type { SessionKey } from '@freshgate/core';

/** Options of the {@link freshgate} plugin. */
export interface FreshgatePluginOptions {
  /** The Freshgate returned by `await createFreshgate(...)`, started. Required. */
  gate: Freshgate | FreshgateHost<FreshDataSource>;
  /**
   * Contract of routes whose `config.freshness` is not set.
   * Default: the engine's `defaultContract` (`'read-your-writes'` unless configured).
   */
  contract?: ContractInput | Contract;
  /**
   * Stable key of the client session, for server-side pins, e.g.
   * `request => request.session?.sessionId ?? request.user?.id`. Default: none (tokens only).
   * A key learned inside the handler is bound with `request.freshness.bindSession(key)`.
   */
  sessionKey?: (request: FastifyRequest) => SessionKey | PromiseLike<SessionKey>;
  /**
   * Answers freshgate's errors (503 no fresh node, 400 rejected token in strict mode) in
   * place of the default. Default: the app's error handler when it has one (the error has
   * `statusCode`; `toProblem(error)` gives freshgate's answer), else
   * `application/problem+json` (RFC 9457).
   */
  onError?: (error: FreshgateError, request: FastifyRequest, reply: FastifyReply) => unknown;
}

/** `fastify.freshgate`: the Freshgate and the app's query classification table. */
export interface FreshgateDecoration {
  readonly gate: Freshgate | FreshgateHost<FreshDataSource>;
  /** Every route registered after the plugin, with its contract and fallback (JSON and Markdown). */
  routeTable(): RouteTable;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's freshness contract; `false` turns freshgate off for the route. */
    freshness?: ContractInput | false;
  }
  interface FastifyRequest {
    /**
     * The request-scoped data source (reads routed by the route's contract, writes to the
     * primary). Reading it on a route with `config.freshness: false` throws a `ConfigError`.
     */
    readonly db: FreshDataSource;
    /** The request's freshness state (`token`, `commitLsn`, `bindSession()`); throws like `db`. */
    readonly freshness: RequestFreshness;
  }
  interface FastifyInstance {
    freshgate: FreshgateDecoration;
  }
}
