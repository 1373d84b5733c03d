import type { ContractInput, RequestFreshness, RouteTable } from '@freshgate/core';
import type { FreshDataSource, Freshgate } from '@freshgate/pg';
import type { FastifyRequest } from 'fastify';

/** A session-key resolver's result; numbers (user ids) are used as their decimal text. */
export type SessionKey = string | number | null | undefined;

/** Options of the {@link freshgate} plugin. */
export interface FreshgatePluginOptions {
  /** The Freshgate returned by `createFreshgate()`. Required. */
  engine: Freshgate;
  /**
   * Contract of routes whose `config.freshness` is not set.
   * Default: the engine's `defaultContract` (`'read-your-writes'` unless configured).
   */
  contract?: ContractInput;
  /**
   * Stable key of the client session, for server-side pins, e.g.
   * `request => request.session?.sessionId ?? request.user?.id`. Default: none (tokens only).
   */
  sessionKey?: (request: FastifyRequest) => SessionKey | Promise<SessionKey>;
}

/** `fastify.freshgate`: the engine and the app's query classification table. */
export interface FreshgateDecoration {
  readonly engine: Freshgate;
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
     * primary). `null` on routes with `config.freshness: false`.
     */
    db: FreshDataSource;
    /** The request's freshness state: contract, `requiredLsn()`, `servedBy`, `token`. */
    freshness: RequestFreshness;
  }
  interface FastifyInstance {
    freshgate: FreshgateDecoration;
  }
}
