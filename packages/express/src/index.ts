export { fresh, freshDb, freshgate } from './middleware.js';
export { freshgateErrors } from './problem.js';
export { routeTable } from './route-table.js';
export type { FreshgateErrorHandler, FreshgateOptions, SessionKey } from './types.js';
