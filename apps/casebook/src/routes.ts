import type { ContractInput } from '@freshgate/core';
import type { FreshDataSource } from '@freshgate/pg';
import {
  type CaseStatus,
  createCase,
  getCase,
  listCases,
  permission,
  revoke,
  STATUSES,
  searchCases,
  statusCounts,
  updateStatus,
} from './cases.js';
import type { Lab } from './lab.js';
import type { LagHistory } from './lag-history.js';
import { HttpProblem } from './problem.js';
import {
  caseId,
  objectBody,
  queryString,
  requiredInteger,
  requiredString,
  userName,
} from './validate.js';

/** What a handler sees, whichever framework runs it. */
export interface RouteContext {
  db: FreshDataSource;
  params: Record<string, string | undefined>;
  query: Record<string, unknown>;
  body: unknown;
  /** The `X-User` header. */
  user: unknown;
  /** `X-Freshness-Route` / `X-Freshness-Lag-Ms` set so far for this request. */
  served(): { route: string | null; lagMs: number | null };
}

/** Services the routes use besides the request's data source. */
export interface CasebookServices {
  status(): unknown;
  lab: Lab | undefined;
  /** The monitor's recent replica lag (and, in lab mode, pause state and delay). */
  lagHistory: LagHistory;
  /** Runs a handler so that the reads it makes are counted under `route`. */
  track<T>(route: string, run: () => T): T;
}

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  /** The route's freshness contract; `false` for routes that do not touch the database. */
  freshness: ContractInput | false;
  handler(
    ctx: RouteContext,
    services: CasebookServices,
  ): Promise<{ status?: number; body: unknown }>;
}

function labOf(services: CasebookServices): Lab {
  // Lab routes exist only in lab mode; elsewhere they are indistinguishable from any unknown URL.
  if (!services.lab) throw new HttpProblem(404, 'Not Found', 'no such route');
  return services.lab;
}

/** Runs `route`'s handler; its reads are counted per route for the dashboard. */
export function runRoute(
  route: RouteSpec,
  ctx: RouteContext,
  services: CasebookServices,
): Promise<{ status?: number; body: unknown }> {
  return services.track(`${route.method} ${route.path}`, () => route.handler(ctx, services));
}

/** Every route of the casebook API, declared once for both frameworks. */
export const ROUTES: readonly RouteSpec[] = [
  {
    method: 'POST',
    path: '/api/cases',
    freshness: 'read-your-writes',
    async handler({ db, body, user }) {
      const who = userName(user, true)!;
      const title = requiredString(objectBody(body), 'title', 200);
      return { status: 201, body: await createCase(db, who, title) };
    },
  },
  {
    method: 'GET',
    path: '/api/cases/:id',
    // An investigator must never see a case go back from in_review to open.
    freshness: 'monotonic',
    async handler({ db, params }) {
      return { body: await getCase(db, caseId(params.id)) };
    },
  },
  {
    method: 'PATCH',
    path: '/api/cases/:id',
    freshness: 'read-your-writes',
    async handler({ db, params, body, user }) {
      const who = userName(user, true)!;
      const id = caseId(params.id);
      const input = objectBody(body);
      const version = requiredInteger(input, 'version', 1, 2_147_483_647);
      const status = input.status;
      if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) {
        throw new HttpProblem(
          422,
          'Unprocessable Content',
          `\`status\` must be one of ${STATUSES.join(', ')}`,
        );
      }
      return { body: await updateStatus(db, who, id, status as CaseStatus, version) };
    },
  },
  {
    method: 'GET',
    path: '/api/cases',
    // The list a user returns to right after adding a case: a replica a moment behind is
    // worth 200 ms of waiting before the read goes to the primary.
    freshness: { contract: 'monotonic', fallback: [{ wait: '200ms' }, 'primary'] },
    async handler({ db, query }) {
      const owner = queryString(query.owner, 'owner', 64);
      return { body: { items: await listCases(db, owner) } };
    },
  },
  {
    method: 'GET',
    path: '/api/dashboard',
    freshness: { maxLag: '5s', fallback: 'stale' },
    async handler({ db, served }) {
      const counts = await statusCounts(db);
      return { body: { ...counts, freshness: served() } };
    },
  },
  {
    method: 'GET',
    path: '/api/search',
    freshness: 'eventual',
    async handler({ db, query }) {
      const q = queryString(query.q, 'q', 200) ?? '';
      return { body: { items: await searchCases(db, q) } };
    },
  },
  {
    method: 'GET',
    path: '/api/permissions/:user',
    freshness: 'strong',
    async handler({ db, params }) {
      return { body: await permission(db, userName(params.user, true)!) };
    },
  },
  {
    method: 'POST',
    path: '/api/permissions/:user/revoke',
    freshness: 'read-your-writes',
    async handler({ db, params }) {
      return { body: await revoke(db, userName(params.user, true)!) };
    },
  },
  {
    method: 'GET',
    path: '/api/freshgate/status',
    freshness: false,
    async handler(_ctx, services) {
      return { body: services.status() };
    },
  },
  {
    method: 'GET',
    path: '/api/freshgate/lag',
    freshness: false,
    async handler(_ctx, services) {
      return { body: services.lagHistory };
    },
  },
  {
    method: 'GET',
    path: '/api/lab/replicas',
    freshness: false,
    async handler(_ctx, services) {
      return { body: { replicas: await labOf(services).states() } };
    },
  },
  ...(['pause', 'resume'] as const).map(
    (action): RouteSpec => ({
      method: 'POST',
      path: `/api/lab/replicas/:name/${action}`,
      freshness: false,
      async handler({ params }, services) {
        const state = await labOf(services)[action](params.name ?? '');
        services.lagHistory.labChanged(state);
        return { body: state };
      },
    }),
  ),
  {
    method: 'POST',
    path: '/api/lab/replicas/:name/delay',
    freshness: false,
    async handler({ params, body }, services) {
      const lab = labOf(services);
      const ms = requiredInteger(objectBody(body), 'ms', 0, 600_000);
      const state = await lab.delay(params.name ?? '', ms);
      services.lagHistory.labChanged(state);
      return { body: state };
    },
  },
];
