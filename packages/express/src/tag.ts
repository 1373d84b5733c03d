import type { Contract } from '@freshgate/core';

/** Marks freshgate's middleware so that `routeTable(app)` can find it in the router stack. */
export const FRESHGATE_LAYER: unique symbol = Symbol.for('@freshgate/express.layer');

/** What a marked middleware declares: the whole middleware (`root`) or a route contract. */
export interface LayerTag {
  kind: 'root' | 'fresh';
  contract: Contract;
}

export function tag<T extends object>(handler: T, value: LayerTag): T {
  Object.defineProperty(handler, FRESHGATE_LAYER, { value });
  return handler;
}
