import type { Contract } from './contract.js';

/** One declared route and its contract, for the query classification table. */
export interface RouteDeclaration {
  readonly method: string;
  readonly path: string;
  readonly contract: Contract;
}

/** The query classification table of a set of routes, as JSON rows and as Markdown. */
export interface RouteTable {
  /** One row per route, in declaration order. */
  routes: RouteListing[];
  /** The same rows as a Markdown table (method, path, contract, fallback, tags). */
  markdown: string;
}

/** A JSON-friendly row of the route listing. */
export interface RouteListing {
  method: string;
  path: string;
  contract: string;
  level: string;
  maxLagMs: number | null;
  fallback: string[];
  tags: Record<string, string> | null;
}

/**
 * The JSON row of one route. Adapters build their app's table from these.
 *
 * @example
 * ```ts
 * routeListing({ method: 'GET', path: '/feed', contract: defineContract('monotonic') });
 * // { method: 'GET', path: '/feed', contract: 'monotonic', level: 'monotonic', fallback: ['primary'], ... }
 * ```
 */
export function routeListing({ method, path, contract }: RouteDeclaration): RouteListing {
  return {
    method,
    path,
    contract: contract.label,
    level: contract.level,
    maxLagMs: contract.maxLagMs,
    fallback:
      contract.level === 'strong'
        ? []
        : contract.fallbacks.map((f) => (f.kind === 'wait' ? `wait ${f.timeoutMs}ms` : f.kind)),
    tags: contract.tags === null ? null : { ...contract.tags },
  };
}

/**
 * Route rows as a Markdown table, for a team to review its freshness contracts.
 *
 * @example
 * ```ts
 * routesMarkdown([routeListing({ method: 'GET', path: '/feed', contract })]);
 * // | method | path | contract | fallback | tags |\n| --- | ... |\n| GET | `/feed` | monotonic | primary | — |
 * ```
 */
export function routesMarkdown(rows: readonly RouteListing[]): string {
  const lines = rows.map(
    (r) =>
      `| ${r.method} | \`${r.path}\` | ${r.contract} | ${r.fallback.join(' → ') || '—'} | ${
        r.tags === null
          ? '—'
          : Object.entries(r.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')
      } |`,
  );
  return [
    '| method | path | contract | fallback | tags |',
    '| --- | --- | --- | --- | --- |',
    ...lines,
  ].join('\n');
}

/**
 * The {@link RouteTable} of `declarations` (what `routeTable(app)` of the Express adapter and
 * `fastify.freshgate.routeTable()` return).
 *
 * @example
 * ```ts
 * const table = routeTable([{ method: 'GET', path: '/feed', contract: defineContract('monotonic') }]);
 * table.routes[0].contract; // 'monotonic'
 * ```
 */
export function routeTable(declarations: readonly RouteDeclaration[]): RouteTable {
  const routes = declarations.map(routeListing);
  return { routes, markdown: routesMarkdown(routes) };
}
