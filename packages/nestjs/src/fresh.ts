import { ConfigError, type Contract, type ContractInput } from '@freshgate/core';
import type { FreshDataSource, FreshRequest } from '@freshgate/pg';
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

// The started request of each HTTP request object, set by the interceptor.
const started = new WeakMap<object, FreshRequest>();

/** @internal Records the started request of `req` (the interceptor). */
export function setStarted(req: object, request: FreshRequest): void {
  started.set(req, request);
}

/** @internal The started request of `req`, if freshgate started it. */
export function startedOf(req: object): FreshRequest | undefined {
  return started.get(req);
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
    const request = startedOf(req);
    if (request === undefined) {
      const handler = `${context.getClass().name}.${context.getHandler().name}`;
      throw new ConfigError(
        '@FreshDb()',
        `freshgate does not serve ${handler} (@Fresh(false), or FreshgateModule is not imported)`,
      );
    }
    return request.db;
  },
);
