import type {
  Contract,
  ContractInput,
  FreshgateError,
  RequestFreshness,
  SessionKey,
} from '@freshgate/core';
import type { FreshDataSource } from '@freshgate/pg';
import type { NextFunction, Request, Response } from 'express';

declare global {
  namespace Express {
    interface Request {
      /**
       * The request-scoped data source: reads routed by the route's freshness contract,
       * writes to the primary (the freshness token is on the response before a write
       * resolves). Set by `freshgate()`, so `undefined` on paths it is not mounted on:
       * {@link freshDb}`(req)` returns it or throws an error that says so.
       */
      db?: FreshDataSource;
      /** The request's freshness state (`token`, `commitLsn`, `bindSession()`), set like `db`. */
      freshness?: RequestFreshness;
    }
  }
}

export type { SessionKey } from '@freshgate/core';

/**
 * Answers a freshgate error (503 no fresh node, 400 rejected token in strict mode, ...) in
 * place of freshgate's problem+json; `toProblem(error)` gives that answer, to reuse parts.
 */
export type FreshgateErrorHandler = (
  error: FreshgateError,
  req: Request,
  res: Response,
  next: NextFunction,
) => void;

/** Options of {@link freshgate}. */
export interface FreshgateOptions {
  /**
   * Contract of routes under this middleware that declare none with `fresh()`.
   * Default: the engine's `defaultContract` (`'read-your-writes'` unless configured).
   */
  contract?: ContractInput | Contract;
  /**
   * Stable key of the client session, for server-side pins, e.g.
   * `req => req.session?.id ?? req.user?.id`. Default: none (freshness from tokens alone).
   * A key learned inside the handler (sign-up, login) is bound with
   * `req.freshness.bindSession(key)`.
   */
  sessionKey?: (req: Request) => SessionKey | PromiseLike<SessionKey>;
  /**
   * Replaces freshgate's error responses, here and in `freshgateErrors()`. Default: an
   * `application/problem+json` response (RFC 9457).
   */
  onError?: FreshgateErrorHandler;
}
