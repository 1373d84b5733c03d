import {
  ConfigError,
  type Contract,
  checkOptions,
  defineContract,
  type RouteDeclaration,
  requestInput,
  responseSink,
  routeTable,
  toProblem,
} from '@freshgate/core';
import { type FreshRequest, isPromise, runWithDb } from '@freshgate/pg';
import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  preHandlerHookHandler,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import type { FreshgateDecoration, FreshgatePluginOptions, SessionKey } from './types.js';

// `prefix`, `logLevel` and `logSerializers` are register() options fastify may pass along.
const OPTION_KEYS = ['engine', 'contract', 'sessionKey', 'prefix', 'logLevel', 'logSerializers'];
const WRAPPED = Symbol('@freshgate/fastify.wrapped');

type ErrorHandler = NonNullable<RouteOptions['errorHandler']>;

/** Validates the options once, at registration. */
function settings(options: FreshgatePluginOptions) {
  checkOptions(options, OPTION_KEYS, 'freshgate plugin options');
  const { engine, sessionKey } = options;
  if (typeof engine?.begin !== 'function' || engine.engine === undefined) {
    throw new ConfigError('engine', 'pass the Freshgate returned by createFreshgate(): { engine }');
  }
  if (sessionKey !== undefined && typeof sessionKey !== 'function') {
    throw new ConfigError('sessionKey', 'expected a function of the request, e.g. r => r.user?.id');
  }
  const defaultContract =
    options.contract === undefined
      ? engine.engine.defaultContract
      : defineContract(options.contract, 'contract');
  return { engine, sessionKey, defaultContract };
}

const plugin: FastifyPluginCallback<FreshgatePluginOptions> = (fastify, options, done) => {
  let normalized: ReturnType<typeof settings>;
  try {
    normalized = settings(options);
  } catch (error) {
    done(error as Error);
    return;
  }
  const { engine, sessionKey, defaultContract } = normalized;
  const routes: RouteDeclaration[] = [];

  function begin(
    request: FastifyRequest,
    reply: FastifyReply,
    contract: Contract,
  ): FreshRequest | PromiseLike<FreshRequest> {
    const start = (key: SessionKey) =>
      engine.begin({
        ...requestInput(request.headers),
        contract,
        sessionKey: key,
        secure: request.protocol === 'https',
        sink: responseSink({
          get: (name) => reply.getHeader(name),
          set: (name, value) => reply.header(name, value),
          // reply.header() appends to an existing set-cookie rather than replacing it.
          append: (name, value) => reply.header(name, value),
          remove: (name) => reply.removeHeader(name),
        }),
      });
    const key = sessionKey === undefined ? undefined : sessionKey(request);
    return isPromise(key) ? key.then(start) : start(key);
  }

  function preHandler(contract: Contract): preHandlerHookHandler {
    return function freshgatePreHandler(request, reply, next) {
      const enter = (started: FreshRequest) => {
        request.db = started.db;
        request.freshness = started.freshness;
        // The route's later hooks and its handler run inside the data source's context.
        runWithDb(started.db, () => next());
      };
      let started: FreshRequest | PromiseLike<FreshRequest>;
      try {
        // Most requests start synchronously: no promise on the hot path unless a session key
        // resolver, a token to verify or a pin to read needs one.
        started = begin(request, reply, contract);
      } catch (error) {
        next(error as Error);
        return;
      }
      if (isPromise(started)) started.then(enter, next);
      else enter(started);
    };
  }

  function withProblems(own: ErrorHandler | undefined, instance: FastifyInstance): ErrorHandler {
    const handler: ErrorHandler = function freshgateErrorHandler(error, request, reply) {
      const problem = toProblem(error);
      if (problem !== null) {
        reply.code(problem.status).headers(problem.headers).send(JSON.stringify(problem.body));
        return;
      }
      if (own !== undefined) return own.call(instance, error, request, reply);
      // Thrown from a route error handler, the error goes on to the app's own error handler.
      throw error;
    };
    return Object.assign(handler, { [WRAPPED]: true });
  }

  fastify.decorateRequest('db', null as never);
  fastify.decorateRequest('freshness', null as never);
  const decoration: FreshgateDecoration = { engine, routeTable: () => routeTable(routes) };
  fastify.decorate('freshgate', decoration);

  fastify.addHook('onRoute', function onRoute(this: FastifyInstance, route) {
    const declared = route.config?.freshness;
    if (declared === false) return;
    if ((route.errorHandler as { [WRAPPED]?: true } | undefined)?.[WRAPPED]) return;
    const methods = [route.method].flat();
    const contract =
      declared === undefined
        ? defaultContract
        : defineContract(declared, `config.freshness of ${methods.join(',')} ${route.url}`);
    for (const method of methods) {
      // The HEAD route fastify adds for a GET behaves like it; list the GET only.
      if (method === 'HEAD' && routes.some((r) => r.method === 'GET' && r.path === route.url))
        continue;
      if (!routes.some((r) => r.method === method && r.path === route.url))
        routes.push({ method, path: route.url, contract });
    }
    const own = route.preHandler === undefined ? [] : [route.preHandler].flat();
    route.preHandler = [preHandler(contract), ...own];
    route.errorHandler = withProblems(route.errorHandler, this);
  });
  done();
};

/**
 * The freshgate plugin: every route registered after it gets `request.db` (reads routed by
 * its `config.freshness` contract, validated when the route is registered) and
 * `request.freshness`; `X-Freshness-*` headers and the cookie are written as statements run;
 * freshgate errors become `application/problem+json` (503 with `Retry-After`, 400 in strict
 * mode). `config: { freshness: false }` turns it off for a route.
 *
 * @example
 * ```ts
 * const engine = await createFreshgate({ primary, replicas, secret });
 * await engine.start();
 * await app.register(freshgate, { engine, sessionKey: (request) => request.user?.id });
 * app.get('/feed', { config: { freshness: 'monotonic' } }, async (request) => {
 *   return (await request.db.query('SELECT * FROM posts ORDER BY id DESC LIMIT 20')).rows;
 * });
 * ```
 */
export const freshgate = fp(plugin, { fastify: '5.x', name: '@freshgate/fastify' });
