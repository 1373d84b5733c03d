import type { ContractInput, RequestFreshness } from '@freshgate/core';
import type { FreshDataSource } from '@freshgate/pg';
import type { Request } from 'express';

declare global {
  namespace Express {
    interface Request {
      /**
       * The request-scoped data source: reads routed by the route's freshness contract,
       * writes to the primary (the freshness token is on the response before a write
       * resolves). Set by `freshgate()`; absent on paths it is not mounted on.
       */
      db: FreshDataSource;
      /** The request's freshness state: contract, `requiredLsn()`, `servedBy`, `token`. */
      freshness: RequestFreshness;
    }
  }
}

/** A session-key resolver's result; numbers (user ids) are used as their decimal text. */
export type SessionKey = string | number | null | undefined;

/** Options of {@link freshgate}. */
export interface FreshgateOptions {
  /**
   * Contract of routes under this middleware that declare none with `fresh()`.
   * Default: the engine's `defaultContract` (`'read-your-writes'` unless configured).
   */
  contract?: ContractInput;
  /**
   * Stable key of the client session, for server-side pins, e.g.
   * `req => req.session?.id ?? req.user?.id`. Default: none (freshness from tokens alone).
   */
  sessionKey?: (req: Request) => SessionKey | Promise<SessionKey>;
}
