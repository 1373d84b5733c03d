import { type Contract, type ContractInput, defineContract } from './contract.js';
import { ConfigError } from './errors.js';

/** One declared route and its contract, for the query classification table. */
export interface RouteDeclaration {
  readonly method: string;
  readonly path: string;
  readonly contract: Contract;
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

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', '*'];

/** The routes declared on an engine. Internal: exposed through the engine. */
export class RouteRegistry {
  readonly #routes = new Map<string, RouteDeclaration>();

  declare(method: string, path: string, input: ContractInput | Contract): Contract {
    const m = String(method).toUpperCase();
    if (!METHODS.includes(m))
      throw new ConfigError('method', `unknown HTTP method ${JSON.stringify(method)}`);
    if (typeof path !== 'string' || path === '')
      throw new ConfigError('path', 'expected a route path');
    const key = `${m} ${path}`;
    const contract = defineContract(input, `routes[${key}]`);
    if (this.#routes.has(key)) throw new ConfigError(`routes[${key}]`, 'route declared twice');
    this.#routes.set(key, { method: m, path, contract });
    return contract;
  }

  list(): RouteListing[] {
    return [...this.#routes.values()].map(({ method, path, contract }) => ({
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
    }));
  }

  markdown(): string {
    const rows = this.list().map(
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
      ...rows,
    ].join('\n');
  }
}
