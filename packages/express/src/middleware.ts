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
import express from 'express';
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
  prepare();
  const { onError } = options;
  const contract = kit.defaultContract;
  // Made once per middleware: with `onError`, the request keeps it for `freshgateErrors()`,
  // and a request that fails to start is answered by it.
  const started =
    onError === undefined
      ? enter
      : (s: FreshRequest, req: Request, next: NextFunction) => enter(s, req, next, onError);
  const failed =
    onError === undefined
      ? answer
      : (error: unknown, req: Request, res: Response, next: NextFunction) =>
          answer(error, req, res, next, onError);
  const middleware: RequestHandler = function freshgateMiddleware(req, res, next) {
    kit.start(req, res, contract, started, failed, next);
  };
  return tag(middleware, { kind: 'root', contract });
}

// No property per request on Express' own requests: `req.db` and `req.freshness` are accessors
// on Express' request prototype, and the data source sits in `res.locals` (a dictionary
// object Express makes for each response) under a symbol. Express swaps a request's
// prototype, and from then on Node.js 20 gives every property added to that request a hidden
// class of its own, copied from the last: `req.db` as a property cost about 3.5 µs per request
// there (in quick runs of section 1), in copies, garbage and slower lookups on the request.
function enter(
  started: FreshRequest,
  req: Request,
  next: NextFunction,
  onError?: FreshgateErrorHandler,
): void {
  const locals = slotsOf(req);
  // A slot already taken means a `res.locals` shared between responses (or a second
  // freshgate() on the path): this request keeps its own properties, never another's.
  if (locals !== undefined && locals[DB] === undefined) {
    locals[DB] = started.db;
    if (onError !== undefined) locals[ON_ERROR] = onError;
  } else {
    req.db = started.db;
    req.freshness = started.freshness;
    // A WeakMap entry per request costs the garbage collector more than the rest of
    // freshgate's work on the request (section 1): only requests without a slot get one.
    if (onError !== undefined) handlers.set(req, onError);
  }
  next();
}

/** Where `req.db` lives on an Express request: `res.locals[DB]`, shared by every copy of this package. */
const DB = Symbol.for('@freshgate/express.db');
/** The `onError` of the `freshgate()` that started the request, beside its data source. */
const ON_ERROR = Symbol.for('@freshgate/express.onError');
/** Marks the prototype that holds freshgate's `db` and `freshness` accessors. */
const ACCESSORS = Symbol.for('@freshgate/express.accessors');
interface Slots {
  [DB]?: FreshDataSource;
  [ON_ERROR]?: FreshgateErrorHandler;
}

// Prototypes seen, and whether `db` and `freshness` are freshgate's accessors on their chain.
const prototypes = new WeakMap<object, boolean>();
let lastPrototype: object | null = null;

// The `res.locals` that holds this request's data source, or undefined when the request gets
// own properties instead: Express did not make it, it has no `res.locals`, or something else
// defines `db` or `freshness` on its prototypes.
function slotsOf(req: Request): Slots | undefined {
  const locals = (req.res as { locals?: unknown } | undefined)?.locals;
  if (typeof locals !== 'object' || locals === null) return undefined;
  return accessors(req) ? (locals as Slots) : undefined;
}

// Express' own request prototype gets the accessors when the first freshgate() is made, before
// the app serves a request. Defined on a prototype that requests already went through, they
// cost every later request of the process, served by freshgate or not, 1 to 1.7 µs on Node.js
// 24 (measured on a route without freshgate: docs/design-notes.md); defined before, nothing
// measurable. A request of another copy of Express still gets them at its first request.
function prepare(): void {
  const { request } = express as { request?: object };
  if (request !== undefined) accessorsOn(request);
}

function accessors(req: Request): boolean {
  const prototype = Object.getPrototypeOf(req) as object | null;
  if (prototype === lastPrototype) return true;
  if (prototype === null) return false;
  const known = accessorsOn(prototype);
  if (known) lastPrototype = prototype;
  return known;
}

// Whether `db` and `freshness` are freshgate's accessors on `prototype`'s chain, defining them
// the first time a prototype is seen.
function accessorsOn(prototype: object): boolean {
  let known = prototypes.get(prototype);
  if (known === undefined) {
    known = defineAccessors(prototype);
    prototypes.set(prototype, known);
  }
  return known;
}

// Defines the accessors on the prototype right above `IncomingMessage.prototype` (Express' own
// `request`, shared by every app and sub-app of that copy of Express), unless an app put its
// own `db` or `freshness` on the way there.
function defineAccessors(prototype: object): boolean {
  let base: object | null = prototype;
  while (base !== null && Object.getPrototypeOf(base) !== IncomingMessage.prototype) {
    if (Object.hasOwn(base, 'db') || Object.hasOwn(base, 'freshness')) return false;
    base = Object.getPrototypeOf(base) as object | null;
  }
  if (base === null) return false;
  if (Object.hasOwn(base, ACCESSORS)) return true;
  if (Object.hasOwn(base, 'db') || Object.hasOwn(base, 'freshness')) return false;
  // An assignment (a test double, another middleware) makes an own property, as it would
  // without the accessors.
  const own = (name: string) =>
    function set(this: Request, value: unknown) {
      Object.defineProperty(this, name, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    };
  Object.defineProperties(base, {
    db: {
      configurable: true,
      get(this: Request) {
        return (this.res as { locals?: Slots | null } | undefined)?.locals?.[DB];
      },
      set: own('db'),
    },
    freshness: {
      configurable: true,
      get(this: Request) {
        return this.db?.freshness;
      },
      set: own('freshness'),
    },
    [ACCESSORS]: { value: true },
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
  // On requests Express made, freshgate keeps the data source in `res.locals`.
  const kept =
    prototypes.get(Object.getPrototypeOf(req) as object) === true
      ? ' (freshgate keeps it in res.locals: add to res.locals, do not replace it)'
      : '';
  throw new ConfigError(
    'freshgate()',
    `no req.db on ${where}: mount app.use(freshgate(gate)) there${kept}`,
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

// The `onError` of the `freshgate()` that started a request that has no slot in `res.locals`.
const handlers = new WeakMap<Request, FreshgateErrorHandler>();

// The `onError` of the `freshgate()` that started the request, if it had one.
function handlerOf(req: Request): FreshgateErrorHandler | undefined {
  return (
    handlers.get(req) ?? (req.res as { locals?: Slots | null } | undefined)?.locals?.[ON_ERROR]
  );
}

// A freshgate error that reaches HTTP gets the request's `onError`, else problem+json; other
// errors, and errors after the headers went out, go on to `next`.
function answer(
  error: unknown,
  req: Request,
  res: Response,
  next: NextFunction,
  onError = handlerOf(req),
): void {
  const problem = toProblem(error);
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
