export { fresh, freshDb, freshgate, freshgateErrors } from './middleware.js';
export { routeTable } from './route-table.js';
export type { FreshgateErrorHandler, FreshgateOptions, SessionKey } from './types.js';
