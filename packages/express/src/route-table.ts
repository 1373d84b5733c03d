import type { Contract, RouteTable } from '@freshgate/core';
import { type RouteDeclaration, routeTable as table } from '@freshgate/core/adapter';

/** Marks freshgate's middleware so that `routeTable(app)` can find it in the router stack. */
export const FRESHGATE_LAYER: unique symbol = Symbol.for('@freshgate/express.layer');

/** What a marked middleware declares: the whole middleware (`root`) or a route contract. */
export interface LayerTag {
  kind: 'root' | 'fresh';
  contract: Contract;
}

/** Marks `handler` with `value` for {@link routeTable}. */
export function tag<T extends object>(handler: T, value: LayerTag): T {
  Object.defineProperty(handler, FRESHGATE_LAYER, { value });
  return handler;
}

// The parts of Express' router (v4 and v5) the walk reads, typed locally.
interface Layer {
  handle: { stack?: Layer[]; [FRESHGATE_LAYER]?: LayerTag };
  route?: { path: unknown; methods: Record<string, boolean>; stack: Layer[] };
  rawPath?: unknown;
  regexp?: RegExp & { fast_slash?: boolean };
}

// Path prefixes freshgate() is mounted on, with the default contract each brings.
type Defaults = { prefix: string; tag: LayerTag }[];

const under = (path: string, prefix: string) =>
  prefix === '' || path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);

// Express 5 keeps the mount path (`rawPath`); Express 4 only a regexp, readable when static.
function mountPath(layer: Layer): string {
  let path: string;
  if (typeof layer.rawPath === 'string') path = layer.rawPath;
  else if (layer.regexp === undefined || layer.regexp.fast_slash) path = '';
  else
    path = layer.regexp.source
      .replace(/^\^/, '')
      .replace(/\\\/\?\(\?=\\\/\|\$\)$/, '')
      .replaceAll('\\/', '/');
  return path === '/' ? '' : path;
}

function walk(stack: Layer[], prefix: string, defaults: Defaults, out: RouteDeclaration[]): void {
  for (const layer of stack) {
    const marked = layer.handle?.[FRESHGATE_LAYER];
    if (layer.route !== undefined) {
      const paths = [layer.route.path].flat().filter((p): p is string => typeof p === 'string');
      for (const path of paths.map((p) => prefix + p)) {
        const applying = defaults.filter((d) => under(path, d.prefix));
        if (!applying.some((d) => d.tag.kind === 'root')) continue;
        const own = layer.route.stack
          .map((l) => l.handle?.[FRESHGATE_LAYER])
          .filter((t) => t?.kind === 'fresh');
        const contract = (own.at(-1) ?? applying.at(-1)?.tag)?.contract;
        if (contract === undefined) continue;
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on)
            out.push({ method: method === '_all' ? '*' : method.toUpperCase(), path, contract });
        }
      }
    } else if (marked !== undefined) {
      defaults.push({ prefix: prefix + mountPath(layer), tag: marked });
    } else if (Array.isArray(layer.handle?.stack)) {
      walk(layer.handle.stack, prefix + mountPath(layer), [...defaults], out);
    }
  }
}

/**
 * The query classification table of an Express app (or router): every route served under
 * `freshgate()` with the contract it runs under (its own `fresh()`, a router default, or the
 * middleware's) and its fallback chain, as JSON rows and as a Markdown table.
 *
 * @example
 * ```ts
 * app.get('/freshgate/routes', (_req, res) => res.json(routeTable(app).routes));
 * console.log(routeTable(app).markdown);
 * ```
 */
export function routeTable(app: object): RouteTable {
  const holder = app as {
    router?: { stack?: Layer[] };
    _router?: { stack?: Layer[] };
    stack?: Layer[];
  };
  const stack = holder.router?.stack ?? holder._router?.stack ?? holder.stack ?? [];
  const out: RouteDeclaration[] = [];
  walk(stack, '', [], out);
  return table(out);
}
