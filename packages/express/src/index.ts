export { fresh, freshgate } from './middleware.js';
export { freshgateErrors } from './problem.js';
export { routeTable } from './route-table.js';
export type { FreshgateOptions, SessionKey } from './types.js';
