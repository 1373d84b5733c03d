export { DEFAULT_BUDGET_BURST, DEFAULT_BUDGET_RATE, PrimaryBudget } from './budget.js';
export { checkOptions } from './check-options.js';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_MAX_OPEN_MS,
  DEFAULT_OPEN_MS,
} from './circuit-breaker.js';
export { systemClock } from './clock.js';
export {
  CONTRACT_NAMES,
  DEFAULT_FALLBACK,
  defineContract,
  parseReadAfterWrite,
  tighten,
} from './contract.js';
export { DEFAULT_COOKIE_NAME } from './cookie.js';
export { decide, routeRequest } from './decide.js';
export { parseDuration } from './duration.js';
export {
  createEngine,
  DEFAULT_CONTRACT,
  DEFAULT_PIN_STORE_TIMEOUT,
  DEFAULT_PIN_TTL,
  DEFAULT_SELECTION,
} from './engine.js';
export {
  ConfigError,
  FreshgateError,
  FreshnessUnavailableError,
  InvalidLsnError,
  NodeUnavailableError,
  PoolExhaustedError,
  StatementTimeoutError,
  StoreError,
  TokenRejectedError,
  TransactionAbortedError,
  UnsafeStatementError,
} from './errors.js';
export {
  EXPOSED_HEADERS,
  type HeaderTarget,
  type IncomingHeaders,
  mergeExposeHeaders,
  requestInput,
  responseSink,
} from './http-headers.js';
export { formatLsn, MAX_LSN, maxLsn, parseLsn, tryParseLsn } from './lsn.js';
export { DEFAULT_MEMORY_PIN_STORE_MAX_ENTRIES, memoryPinStore } from './pin-store.js';
export { toProblem } from './problem.js';
export {
  HEADER_LAG_MS,
  HEADER_READ_AFTER_WRITE,
  HEADER_ROUTE,
  HEADER_TOKEN,
  RequestFreshness,
} from './request-freshness.js';
export { routeListing, routesMarkdown, routeTable } from './route-registry.js';
export { hashSessionKey } from './session-key.js';
export {
  ATTR_CONTRACT,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK,
  ATTR_LAG_MS,
  ATTR_NODE,
  ATTR_REASON,
  ATTR_REQUIRED_LSN,
  ATTR_ROUTE,
  ATTR_STALE,
  ATTR_STATE,
  ATTR_STORE_OPERATION,
  ATTR_TRANSITION,
  ATTR_WAIT_OUTCOME,
  METRIC_BUDGET_EXHAUSTED,
  METRIC_FALLBACKS,
  METRIC_NODE_TRANSITIONS,
  METRIC_REPLICA_LAG,
  METRIC_ROUTES,
  METRIC_STORE_FAILURES,
  METRIC_TOKEN_REJECTIONS,
  METRIC_WAIT_DURATION,
} from './telemetry.js';
export {
  type ClusterLineage,
  checkTokenCluster,
  parseClusterId,
  parseTimelineHistory,
  survivesTimelineSwitch,
  type TimelineSwitch,
} from './timeline-history.js';
export {
  createTokenCodec,
  DEFAULT_TOKEN_CACHE_SIZE,
  DEFAULT_TOKEN_MAX_LENGTH,
  DEFAULT_TOKEN_TTL,
  DEFAULT_TOKEN_TYP,
  MIN_SECRET_BYTES,
} from './token-codec.js';
export { Topology } from './topology.js';
export * from './types.js';
