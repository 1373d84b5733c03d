import { ConfigError, type Contract, type ContractInput, defineContract } from '@freshgate/core';
import { createAdapterKit, type FreshgateHost } from '@freshgate/core/adapter';
import type { FreshDataSource, Freshgate } from '@freshgate/pg';
import type { Request, RequestHandler, Response } from 'express';
import { answer, handlers } from './problem.js';
import { tag } from './tag.js';
import type { FreshgateOptions } from './types.js';

/**
 * The freshgate middleware: reads the request's token (header or cookie), hints and session
 * pin once, and gives the rest of the chain `req.db` and `req.freshness`. Response headers
 * (`X-Freshness-Token`, `X-Freshness-Route`, the cookie) are written as statements run.
 * A route declares its contract with {@link fresh}; the others use `options.contract`.
 *
 * @example
 * ```ts
 * const gate = await createFreshgate({ primary, replicas, secret });
 * await gate.start();
 * app.use(freshgate(gate, { sessionKey: (req) => req.session?.id }));
 * app.get('/cases/:id', fresh('read-your-writes'), async (req, res) => {
 *   const { rows } = await freshDb(req).query('SELECT * FROM cases WHERE id = $1', [req.params.id]);
 *   res.json(rows[0]);
 * });
 * app.use(freshgateErrors());
 * ```
 */
export function freshgate(
  gate: Freshgate | FreshgateHost<FreshDataSource>,
  options: FreshgateOptions = {},
): RequestHandler {
  const kit = createAdapterKit<Request, Response, FreshDataSource>(gate, options, {
    name: 'freshgate() options',
    hostOption: 'gate',
    io: {
      headers: (req) => req.headers,
      secure: (req) => req.secure,
      response: (res) => ({
        get: (name) => res.getHeader(name),
        set: (name, value) => res.setHeader(name, value),
        append: (name, value) => res.append(name, value),
      }),
    },
  });
  const { onError } = options;
  const contract = kit.defaultContract;
  const middleware: RequestHandler = function freshgateMiddleware(req, res, next) {
    if (onError !== undefined) handlers.set(req, onError);
    kit.start(
      req,
      res,
      contract,
      (started) => {
        req.db = started.db;
        req.freshness = started.freshness;
        next();
      },
      (error) => answer(error, req, res, next),
    );
  };
  return tag(middleware, { kind: 'root', contract });
}

/**
 * The request's data source, set by {@link freshgate}; throws a `ConfigError` that says so
 * on a path freshgate is not mounted on. `req.db` is the same value, typed optional.
 *
 * @example
 * ```ts
 * app.get('/cases/:id', async (req, res) => {
 *   const { rows } = await freshDb(req).query('SELECT * FROM cases WHERE id = $1', [req.params.id]);
 *   res.json(rows[0]);
 * });
 * ```
 */
export function freshDb(req: Request): FreshDataSource {
  if (req.db === undefined) {
    throw new ConfigError(
      'freshgate()',
      `no req.db on ${req.method} ${req.originalUrl}: mount app.use(freshgate(gate)) on this path`,
    );
  }
  return req.db;
}

/**
 * Route-level declaration of a freshness contract, validated now: a typo fails when the
 * route is registered. Used as router middleware (`router.use(fresh('eventual'))`) it is the
 * default of the routes after it; a route's own `fresh()` wins.
 *
 * @example
 * ```ts
 * app.get('/feed', fresh('monotonic'), feedHandler);
 * app.get('/dashboard', fresh({ maxLag: '2s', fallback: 'stale' }), dashboardHandler);
 * ```
 */
export function fresh(contract: ContractInput | Contract): RequestHandler {
  const declared: Contract = defineContract(contract, 'fresh()');
  const middleware: RequestHandler = function freshContract(req, _res, next) {
    if (req.freshness === undefined) {
      next(
        new ConfigError('fresh()', 'mount app.use(freshgate(gate)) before routes that use fresh()'),
      );
      return;
    }
    req.freshness.useContract(declared);
    next();
  };
  return tag(middleware, { kind: 'fresh', contract: declared });
}
