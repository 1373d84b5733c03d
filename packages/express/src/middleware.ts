import { IncomingMessage } from 'node:http';
import {
  ConfigError,
  type Contract,
  type ContractInput,
  defineContract,
  type FreshgateError,
  toProblem,
} from '@freshgate/core';
import { createAdapterKit, type FreshgateHost } from '@freshgate/core/adapter';
import type { FreshDataSource, Freshgate, FreshRequest } from '@freshgate/pg';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { tag } from './route-table.js';
import type { FreshgateErrorHandler, FreshgateOptions } from './types.js';

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
        remove: (name) => res.removeHeader(name),
      }),
    },
  });
  const { onError } = options;
  const contract = kit.defaultContract;
  const middleware: RequestHandler = function freshgateMiddleware(req, res, next) {
    if (onError !== undefined) handlers.set(req, onError);
    kit.start(req, res, contract, enter, answer, next);
  };
  return tag(middleware, { kind: 'root', contract });
}

// One property per request: `req.freshness` is an accessor on Express' request prototype that
// reads `req.db.freshness`. Express swaps a request's prototype, and from then on Node.js 20
// gives every property added to that request a hidden class of its own, copied from the last:
// about 1.5 µs per request each, and garbage for the old generation.
function enter(started: FreshRequest, req: Request, next: NextFunction): void {
  req.db = started.db;
  if (!freshnessAccessor(req)) req.freshness = started.freshness;
  next();
}

// Prototypes seen, and whether `freshness` is an accessor on their chain.
const prototypes = new WeakMap<object, boolean>();
let lastPrototype: object | null = null;
const FRESHNESS_ACCESSOR = Symbol.for('@freshgate/express.freshness');

// Whether `req.freshness` reads `req.db.freshness` through the prototype right above
// `IncomingMessage.prototype` (Express' own `request`, shared by every app and sub-app of that
// copy of Express), defining it there the first time. False for a request Express did not
// make, or when something else holds `freshness` there for good.
function freshnessAccessor(req: Request): boolean {
  const prototype = Object.getPrototypeOf(req) as object | null;
  if (prototype === lastPrototype) return true;
  if (prototype === null) return false;
  let known = prototypes.get(prototype);
  if (known === undefined) {
    let base: object | null = prototype;
    while (base !== null && Object.getPrototypeOf(base) !== IncomingMessage.prototype) {
      base = Object.getPrototypeOf(base) as object | null;
    }
    known = base !== null && defineFreshness(base);
    prototypes.set(prototype, known);
  }
  if (known) lastPrototype = prototype;
  return known;
}

function defineFreshness(base: object): boolean {
  if (Object.hasOwn(base, FRESHNESS_ACCESSOR)) return true;
  if (Object.getOwnPropertyDescriptor(base, 'freshness')?.configurable === false) return false;
  Object.defineProperties(base, {
    freshness: {
      configurable: true,
      get(this: Request) {
        return this.db?.freshness;
      },
      // An assignment (a test double, another middleware) makes an own property, as it
      // would without the accessor.
      set(this: Request, value: unknown) {
        Object.defineProperty(this, 'freshness', {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
    },
    [FRESHNESS_ACCESSOR]: { value: true },
  });
  return true;
}

/**
 * The request's data source, set by {@link freshgate}; throws a `ConfigError` that says so
 * on a path freshgate is not mounted on. `req.db` is the same value, typed optional.
 *
 * @example
 * ```ts
 * const { rows } = await freshDb(req).query('SELECT * FROM cases WHERE id = $1', [id]);
 * ```
 */
export function freshDb(req: Request): FreshDataSource {
  if (req.db !== undefined) return req.db;
  const where = `${req.method} ${req.originalUrl}`;
  throw new ConfigError(
    'freshgate()',
    `no req.db on ${where}: mount app.use(freshgate(gate)) there`,
  );
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
      next(new ConfigError('fresh()', 'mount app.use(freshgate(gate)) before it'));
      return;
    }
    req.freshness.useContract(declared);
    next();
  };
  return tag(middleware, { kind: 'fresh', contract: declared });
}

// The `onError` of the `freshgate()` that started each request, for `freshgateErrors()`.
const handlers = new WeakMap<Request, FreshgateErrorHandler>();

// A freshgate error that reaches HTTP gets the request's `onError`, else problem+json; other
// errors, and errors after the headers went out, go on to `next`.
function answer(error: unknown, req: Request, res: Response, next: NextFunction): void {
  const problem = toProblem(error);
  const onError = handlers.get(req);
  if (problem === null || res.headersSent) next(error);
  else if (onError !== undefined) onError(error as FreshgateError, req, res, next);
  else res.status(problem.status).set(problem.headers).send(JSON.stringify(problem.body));
}

/**
 * Error middleware that answers freshgate errors thrown by `req.db` in a handler: no replica
 * and no allowed fallback → 503 with `Retry-After`, a rejected token in strict mode → 400,
 * both `application/problem+json` unless `freshgate({ onError })` answers them. Other errors
 * go on to the next error handler. Mount it after the routes.
 *
 * @example
 * ```ts
 * app.get('/cases/:id', fresh('read-your-writes'), handler);
 * app.use(freshgateErrors());
 * ```
 */
export function freshgateErrors(): ErrorRequestHandler {
  return function freshgateErrorHandler(err, req, res, next) {
    answer(err, req, res, next);
  };
}
