import { type Contract, defineContract, type RouteTable } from '@freshgate/core';
import { type RouteDeclaration, routeTable } from '@freshgate/core/adapter';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { FRESH_METADATA, type FreshDeclaration } from './fresh.js';

// biome-ignore lint/complexity/noBannedTypes: controller classes and their methods, as Nest sees them.
type Fn = Function;

const read = (key: string, target: object): unknown => Reflect.getMetadata(key, target);

function paths(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value ?? '/'];
  return list.map((p) => String(p));
}

function join(prefix: string, path: string): string {
  const parts = [prefix, path].map((p) => p.replace(/^\/+|\/+$/g, '')).filter((p) => p !== '');
  return `/${parts.join('/')}`;
}

/**
 * The contract of every route handler, read from `@Fresh()` metadata once when the module
 * starts (a typo throws then, with the route named) and looked up per request.
 */
export class RouteContracts {
  readonly #byHandler = new Map<Fn, Contract | null>();
  readonly #declarations: RouteDeclaration[] = [];
  readonly #defaultContract: Contract;

  constructor(defaultContract: Contract) {
    this.#defaultContract = defaultContract;
  }

  /** Validates and records the routes of one controller class. */
  addController(controller: Fn, methodNames: readonly string[]): void {
    const prototype = controller.prototype as Record<string, unknown>;
    const classDeclared = read(FRESH_METADATA, controller) as FreshDeclaration | undefined;
    const classContract =
      classDeclared === undefined || classDeclared === false
        ? classDeclared
        : defineContract(classDeclared, `@Fresh() of ${controller.name}`);
    for (const name of methodNames) {
      const handler = prototype[name];
      if (typeof handler !== 'function') continue;
      const method = read(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (method === undefined) continue;
      const verb = RequestMethod[method] ?? String(method);
      const routes = paths(read(PATH_METADATA, controller)).flatMap((prefix) =>
        paths(read(PATH_METADATA, handler)).map((path) => join(prefix, path)),
      );
      const declared = read(FRESH_METADATA, handler) as FreshDeclaration | undefined;
      const where = `${verb} ${routes[0]} (${controller.name}.${name})`;
      const contract =
        declared === undefined
          ? classContract === undefined
            ? this.#defaultContract
            : classContract
          : declared === false
            ? false
            : defineContract(declared, `@Fresh() of ${where}`);
      this.#byHandler.set(handler, contract === false ? null : contract);
      if (contract === false) continue;
      for (const path of routes) this.#declarations.push({ method: verb, path, contract });
    }
  }

  /** The contract of `handler`; `null` when freshgate stays out of it (`@Fresh(false)`). */
  contractOf(controller: Fn, handler: Fn): Contract | null {
    const known = this.#byHandler.get(handler);
    if (known !== undefined) return known;
    // A handler the module did not see at start-up (registered later): read it now.
    this.addController(controller, [handler.name]);
    return this.#byHandler.get(handler) ?? this.#defaultContract;
  }

  /** Every route freshgate serves, with its contract. */
  table(): RouteTable {
    return routeTable(this.#declarations);
  }
}
