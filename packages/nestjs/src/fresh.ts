import { ConfigError, type Contract, type ContractInput } from '@freshgate/core';
import { currentDb, type FreshDataSource, type FreshRequest } from '@freshgate/pg';
import {
  type CustomDecorator,
  createParamDecorator,
  type ExecutionContext,
  SetMetadata,
} from '@nestjs/common';

/** Metadata key of {@link Fresh}. */
export const FRESH_METADATA = '@freshgate/nestjs:contract';

/** What {@link Fresh} takes: a contract, or `false` for a route that does not touch the database. */
export type FreshDeclaration = ContractInput | Contract | false;

/**
 * Declares the freshness contract of a controller method, or of every method of a controller
 * class (a method's own `@Fresh()` wins). Checked when the module starts: a typo fails at boot
 * with the route named. `@Fresh(false)`: freshgate stays out of the route (no data source, no
 * headers).
 *
 * @example
 * ```ts
 * @Controller('cases')
 * @Fresh('read-your-writes')
 * export class CasesController {
 *   @Get('feed')
 *   @Fresh('monotonic')
 *   feed(@FreshDb() db: FreshDataSource) {
 *     return db.query('SELECT * FROM cases ORDER BY id DESC LIMIT 20');
 *   }
 * }
 * ```
 */
export function Fresh(contract: FreshDeclaration): CustomDecorator<string> {
  return SetMetadata(FRESH_METADATA, contract);
}

// The interceptor runs the handler inside the started request (`FreshRequest.run`), so that
// `currentDb()` of `@freshgate/pg` is the request's data source when Nest resolves the
// handler's parameters: `@FreshDb()` reads it there, and a request costs no entry in a map.
// (A WeakMap entry per request costs the garbage collector more than the rest of freshgate's
// work on a request: section 1 of docs/BENCHMARKS.md measured it on Express.) Only requests of
// a gate whose started requests run outside the context `currentDb()` reads are recorded here:
// one created with `asyncContext: false`, or a subclass or wrapper whose `begin()` does so.
const started = new WeakMap<object, FreshRequest>();

/**
 * @internal Whether `@FreshDb()` finds the data source of `request` through `currentDb()`
 * (asked once per gate, with its first request).
 */
export function sharesContext(request: FreshRequest): boolean {
  return request.run(() => dbInContext() === request.db);
}

/** @internal Records the started request of `req`, for a gate that does not share its context. */
export function recordStarted(req: object, request: FreshRequest): void {
  started.set(req, request);
}

/** @internal The data source freshgate started for `req`, if it started one. */
export function startedDb(req: object): FreshDataSource | undefined {
  return started.get(req)?.db ?? dbInContext();
}

function dbInContext(): FreshDataSource | undefined {
  try {
    return currentDb();
  } catch {
    return undefined;
  }
}

/**
 * Parameter decorator: the request's data source (reads routed by the route's contract,
 * writes on the primary, `db.freshness` for the token and commit LSN). Throws a `ConfigError`
 * on a route with `@Fresh(false)`.
 *
 * @example
 * ```ts
 * @Get(':id')
 * async find(@Param('id') id: string, @FreshDb() db: FreshDataSource) {
 *   const { rows } = await db.query('SELECT * FROM cases WHERE id = $1', [id]);
 *   return rows[0];
 * }
 * ```
 */
export const FreshDb: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext): FreshDataSource => {
    const req = context.switchToHttp().getRequest<object>();
    const db = startedDb(req);
    if (db === undefined) {
      const handler = `${context.getClass().name}.${context.getHandler().name}`;
      throw new ConfigError(
        '@FreshDb()',
        `freshgate does not serve ${handler} (@Fresh(false), or FreshgateModule is not imported)`,
      );
    }
    return db;
  },
);
