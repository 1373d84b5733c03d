import { fresh, freshDb, freshgate, freshgateErrors } from '@freshgate/express';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { Casebook } from './casebook.js';
import { BODY_LIMIT, PROBLEM_JSON, problemFor } from './http-errors.js';
import { METRICS_PATH } from './metrics.js';
import { HttpProblem } from './problem.js';
import { ROUTES, runRoute } from './routes.js';

/** The casebook API on Express. */
export function expressApp(
  casebook: Casebook,
  assets: Record<string, { type: string; body: string }>,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  for (const [path, asset] of Object.entries(assets)) {
    app.get(path, (_req, res) => {
      res.type(asset.type).send(asset.body);
    });
  }
  const metrics = casebook.metrics;
  if (metrics !== undefined) app.get(METRICS_PATH, (req, res) => metrics.handle(req, res));
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use('/api', freshgate(casebook.freshgate, { sessionKey: (req) => req.get('x-user') }));
  for (const route of ROUTES) {
    const handler: RequestHandler = async (req, res, next) => {
      try {
        const out = await runRoute(
          route,
          {
            get db() {
              return freshDb(req);
            },
            params: req.params as Record<string, string>,
            query: req.query as Record<string, unknown>,
            body: req.body,
            user: req.get('x-user'),
            served: () => served(freshDb(req).freshness),
          },
          casebook.services,
        );
        res.status(out.status ?? 200).json(out.body);
      } catch (error) {
        next(error);
      }
    };
    const method = route.method.toLowerCase() as 'get' | 'post' | 'patch';
    if (route.freshness === false) app[method](route.path, handler);
    else app[method](route.path, fresh(route.freshness), handler);
  }
  app.use((_req, _res, next) => next(new HttpProblem(404, 'Not Found', 'no such route')));
  app.use(freshgateErrors());
  const problems: ErrorRequestHandler = (error, _req, res, _next) => {
    const { status, body } = problemFor(error);
    res.status(status).type(PROBLEM_JSON).send(JSON.stringify(body));
  };
  app.use(problems);
  return app;
}

export function served(
  freshness: { servedBy: string | null; headers: Record<string, string> } | null | undefined,
) {
  const lag = freshness?.headers['X-Freshness-Lag-Ms'];
  return { route: freshness?.servedBy ?? null, lagMs: lag === undefined ? null : Number(lag) };
}
