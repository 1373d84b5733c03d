import { ConfigError, defineContract, type FreshgateError, toProblem } from '@freshgate/core';
import { createAdapterKit, type RouteDeclaration, routeTable } from '@freshgate/core/adapter';
import type { FreshRequest } from '@freshgate/pg';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { FreshgateDecoration, FreshgatePluginOptions } from './types.js';

const STARTED = Symbol('@freshgate/fastify.started');
type Started = FastifyRequest & { [STARTED]: FreshRequest | null };

function started(request: FastifyRequest): FreshRequest {
  const value = (request as Started)[STARTED];
  if (value === null) {
    const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
    throw new ConfigError(
      'config.freshness',
      `no request.db on ${route}: the route has config.freshness: false or was registered before the freshgate plugin`,
    );
  }
  return value;
}

const plugin: FastifyPluginCallback<FreshgatePluginOptions> = (fastify, options, done) => {
  let kit: ReturnType<typeof createAdapterKit<FastifyRequest, FastifyReply, FreshRequest['db']>>;
  try {
    const { gate, ...rest } = options;
    kit = createAdapterKit(gate, rest, {
      name: 'freshgate plugin options',
      hostOption: 'gate',
      // register() options fastify may pass along.
      extraOptions: ['prefix', 'logLevel', 'logSerializers'],
      io: {
        headers: (request) => request.headers,
        secure: (request) => request.protocol === 'https',
        // reply.header() appends to an existing set-cookie rather than replacing it.
        response: (reply) => ({
          get: (name) => reply.getHeader(name),
          set: (name, value) => reply.header(name, value),
          append: (name, value) => reply.header(name, value),
          remove: (name) => reply.removeHeader(name),
        }),
      },
    });
  } catch (error) {
    done(error as Error);
    return;
  }
  const { onError } = options;
  const routes: RouteDeclaration[] = [];

  // Freshgate's errors reach the app's error handler like any other (with `statusCode`);
  // only where the app has none do they get freshgate's problem+json instead of Fastify's JSON.
  const answer: NonNullable<RouteOptions['errorHandler']> = function freshgateErrors(e, req, rep) {
    const problem = toProblem(e);
    if (problem !== null && onError !== undefined) return onError(e as FreshgateError, req, rep);
    // Fastify's own default handler keeps this name: anything else is the app's.
    if (problem === null || req.server.errorHandler.name !== 'defaultErrorHandler') throw e;
    rep.code(problem.status).headers(problem.headers).send(JSON.stringify(problem.body));
  };

  fastify.decorateRequest(STARTED as never, null as never);
  fastify.decorateRequest('db', {
    getter: function (this: FastifyRequest) {
      return started(this).db;
    },
  } as never);
  fastify.decorateRequest('freshness', {
    getter: function (this: FastifyRequest) {
      return started(this).freshness;
    },
  } as never);
  const decoration: FreshgateDecoration = { gate: kit.host, routeTable: () => routeTable(routes) };
  fastify.decorate('freshgate', decoration);

  fastify.addHook('onRoute', (route) => {
    const declared = route.config?.freshness;
    if (declared === false) return;
    const methods = [route.method].flat();
    const contract =
      declared === undefined
        ? kit.defaultContract
        : defineContract(declared, `config.freshness of ${methods.join(',')} ${route.url}`);
    for (const method of methods) {
      // The HEAD route fastify adds for a GET behaves like it; list the GET only.
      if (method === 'HEAD' && routes.some((r) => r.method === 'GET' && r.path === route.url))
        continue;
      if (!routes.some((r) => r.method === method && r.path === route.url))
        routes.push({ method, path: route.url, contract });
    }
    const own = route.preHandler === undefined ? [] : [route.preHandler].flat();
    route.preHandler = [
      function freshgatePreHandler(request, reply, next) {
        kit.start(request, reply, contract, enter as never, fail, next);
      },
      ...own,
    ];
    route.errorHandler ??= answer;
  });
  done();
};

function enter(started: FreshRequest, request: FastifyRequest, next: (error?: Error) => void) {
  (request as Started)[STARTED] = started;
  next();
}

function fail(error: unknown, _req: unknown, _res: unknown, next: (error?: Error) => void) {
  next(error as Error);
}

/**
 * The freshgate plugin: every route registered after it gets `request.db` (reads routed by
 * its `config.freshness` contract, validated when the route is registered) and
 * `request.freshness`; `X-Freshness-*` headers and the cookie are written as statements run.
 * Freshgate's errors (503 with `Retry-After`, 400 in strict mode) go to the app's error
 * handler, or become `application/problem+json` when it has none; `onError` replaces both.
 * `config: { freshness: false }` turns it off for a route.
 *
 * @example
 * ```ts
 * const gate = await createFreshgate({ primary, replicas, secret });
 * await gate.start();
 * await app.register(freshgate, { gate, sessionKey: (request) => request.user?.id });
 * app.get('/feed', { config: { freshness: 'monotonic' } }, async (request) => {
 *   return (await request.db.query('SELECT * FROM posts ORDER BY id DESC LIMIT 20')).rows;
 * });
 * ```
 */
export const freshgate = fp(plugin, { fastify: '5.x', name: '@freshgate/fastify' });
