// `@freshgate/core/adapter`: the kit for packages that build on freshgate — framework adapters,
// data layers, pin stores. Applications import from `@freshgate/core` instead.
export {
  type AdapterKit,
  type AdapterOptions,
  createAdapterKit,
  type FreshgateHost,
  isPromise,
  type RequestIO,
  type SessionKey,
  type StartedRequest,
} from './adapter-kit.js';
export {
  AdaptiveBudget,
  type AdaptiveBudgetOptions,
  type PrimaryOutcome,
} from './adaptive-budget.js';
export { type BudgetPriority, type FallbackBudget, PrimaryBudget } from './budget.js';
export { checkOptions } from './check-options.js';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSettings,
} from './circuit-breaker.js';
export { systemClock } from './clock.js';
export { parseDuration } from './duration.js';
export type { BeginInput, Engine } from './engine.js';
export { createEngine, ENGINE_OPTIONS } from './engine.js';
export {
  EXPOSED_HEADERS,
  type HeaderTarget,
  type IncomingHeaders,
  mergeExposeHeaders,
  requestInput,
  responseSink,
} from './http-headers.js';
export type { LoopDelay } from './loop-delay.js';
export { MAX_LSN, maxLsn, tryParseLsn } from './lsn.js';
export { type MemoryPins, memoryPins } from './pin-store.js';
export type { ResponseSink } from './request-freshness.js';
export { RequestFreshness } from './request-freshness.js';
export { type RouteDeclaration, routeTable } from './route-table.js';
export {
  type ClusterLineage,
  checkTokenCluster,
  parseClusterId,
  parseTimelineHistory,
  survivesTimelineSwitch,
  type TimelineSwitch,
} from './timeline-history.js';
export { settleWithin, withTimeout } from './timeout.js';
export { Topology } from './topology.js';
