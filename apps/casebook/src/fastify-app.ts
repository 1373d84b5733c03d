import { toProblem } from '@freshgate/core';
import { freshgate } from '@freshgate/fastify';
import Fastify from 'fastify';
import type { Casebook } from './casebook.js';
import { served } from './express-app.js';
import { BODY_LIMIT, PROBLEM_JSON, problemFor } from './http-errors.js';
import { METRICS_PATH } from './metrics.js';
import { HttpProblem } from './problem.js';
import { ROUTES, runRoute } from './routes.js';

/** The casebook API on Fastify. */
export async function fastifyApp(
  casebook: Casebook,
  assets: Record<string, { type: string; body: string }>,
) {
  const app = Fastify({ bodyLimit: BODY_LIMIT });
  await app.register(freshgate, {
    gate: casebook.freshgate,
    sessionKey: (request) => {
      const user = request.headers['x-user'];
      return typeof user === 'string' ? user : undefined;
    },
  });
  for (const [path, asset] of Object.entries(assets)) {
    app.get(path, { config: { freshness: false } }, async (_request, reply) =>
      reply.type(asset.type).send(asset.body),
    );
  }
  const metrics = casebook.metrics;
  if (metrics !== undefined) {
    app.get(METRICS_PATH, { config: { freshness: false } }, (request, reply) => {
      // The exporter writes the raw response itself.
      reply.hijack();
      metrics.handle(request.raw, reply.raw);
    });
  }
  for (const route of ROUTES) {
    app.route({
      method: route.method,
      url: route.path,
      config: { freshness: route.freshness },
      handler: async (request, reply) => {
        const out = await runRoute(
          route,
          {
            // Read lazily: routes with `freshness: false` have no data source.
            get db() {
              return request.db;
            },
            params: request.params as Record<string, string>,
            query: request.query as Record<string, unknown>,
            body: request.body,
            user: request.headers['x-user'],
            served: () => served(request.freshness),
          },
          casebook.services,
        );
        return reply.code(out.status ?? 200).send(out.body);
      },
    });
  }
  app.setNotFoundHandler((_request, reply) => {
    const { status, body } = problemFor(new HttpProblem(404, 'Not Found', 'no such route'));
    return reply.code(status).type(PROBLEM_JSON).send(JSON.stringify(body));
  });
  app.setErrorHandler((error, _request, reply) => {
    // Freshgate's errors (503 no fresh node, ...) reach the app's handler with their answer.
    const problem = toProblem(error);
    if (problem !== null) {
      return reply.code(problem.status).headers(problem.headers).send(JSON.stringify(problem.body));
    }
    const { status, body } = problemFor(error);
    return reply.code(status).type(PROBLEM_JSON).send(JSON.stringify(body));
  });
  return app;
}
