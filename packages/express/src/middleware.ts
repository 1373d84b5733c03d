import {
  ConfigError,
  type Contract,
  type ContractInput,
  checkOptions,
  defineContract,
  requestInput,
  responseSink,
} from '@freshgate/core';
import { type Freshgate, type FreshRequest, isPromise, runWithDb } from '@freshgate/pg';
import type { RequestHandler } from 'express';
import { sendProblem } from './problem.js';
import { tag } from './tag.js';
import type { FreshgateOptions, SessionKey } from './types.js';

const OPTION_KEYS = ['contract', 'sessionKey'];

/**
 * The freshgate middleware: reads the request's token (header or cookie), hints and session
 * pin once, and gives the rest of the chain `req.db` and `req.freshness`. Response headers
 * (`X-Freshness-Token`, `X-Freshness-Route`, the cookie) are written as statements run.
 * A route declares its contract with {@link fresh}; the others use `options.contract`.
 *
 * @example
 * ```ts
 * const engine = await createFreshgate({ primary, replicas, secret });
 * await engine.start();
 * app.use(freshgate(engine, { sessionKey: (req) => req.session?.id }));
 * app.get('/cases/:id', fresh('read-your-writes'), async (req, res) => {
 *   const { rows } = await req.db.query('SELECT * FROM cases WHERE id = $1', [req.params.id]);
 *   res.json(rows[0]);
 * });
 * ```
 */
export function freshgate(engine: Freshgate, options: FreshgateOptions = {}): RequestHandler {
  if (typeof engine?.begin !== 'function' || engine.engine === undefined) {
    throw new ConfigError('engine', 'pass the Freshgate returned by createFreshgate()');
  }
  checkOptions(options, OPTION_KEYS, 'freshgate() options');
  const { sessionKey } = options;
  if (sessionKey !== undefined && typeof sessionKey !== 'function') {
    throw new ConfigError(
      'sessionKey',
      'expected a function of the request, e.g. req => req.session?.id',
    );
  }
  const contract =
    options.contract === undefined
      ? engine.engine.defaultContract
      : defineContract(options.contract, 'contract');

  const middleware: RequestHandler = function freshgateMiddleware(req, res, next) {
    const begin = (key: SessionKey) =>
      engine.begin({
        ...requestInput(req.headers),
        contract,
        sessionKey: key,
        secure: req.secure,
        sink: responseSink({
          get: (name) => res.getHeader(name),
          set: (name, value) => res.setHeader(name, value),
          append: (name, value) => res.append(name, value),
          remove: (name) => res.removeHeader(name),
        }),
      });
    const fail = (error: unknown) => {
      if (!sendProblem(res, error)) next(error);
    };
    const enter = (started: FreshRequest) => {
      req.db = started.db;
      req.freshness = started.freshness;
      // The rest of the chain runs inside the data source's context, so currentDb() works.
      runWithDb(started.db, () => next());
    };
    let started: FreshRequest | PromiseLike<FreshRequest>;
    try {
      // Most requests start synchronously: no promise on the hot path unless a session key
      // resolver, a token to verify or a pin to read needs one.
      const key = sessionKey === undefined ? undefined : sessionKey(req);
      started = isPromise(key) ? key.then(begin) : begin(key);
    } catch (error) {
      fail(error);
      return;
    }
    if (isPromise(started)) started.then(enter, fail);
    else enter(started);
  };
  return tag(middleware, { kind: 'root', contract });
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
  const declared = defineContract(contract, 'fresh()');
  const middleware: RequestHandler = function freshContract(req, _res, next) {
    if (req.freshness == null) {
      next(
        new ConfigError(
          'fresh()',
          'mount app.use(freshgate(engine)) before routes that use fresh()',
        ),
      );
      return;
    }
    try {
      req.freshness.useContract(declared);
    } catch (error) {
      next(error);
      return;
    }
    next();
  };
  return tag(middleware, { kind: 'fresh', contract: declared });
}
