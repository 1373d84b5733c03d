// `@freshgate/core`: what applications write. The kit for adapters, data layers and pin stores
// is `@freshgate/core/adapter`; test helpers are `@freshgate/core/testing`.
export { defineContract } from './contract.js';
export {
  ConfigError,
  FreshgateError,
  FreshnessUnavailableError,
  InvalidLsnError,
  NodeUnavailableError,
  NotStartedError,
  PoolExhaustedError,
  StatementTimeoutError,
  StoreError,
  TokenRejectedError,
  TransactionAbortedError,
  UnsafeStatementError,
} from './errors.js';
export { EXPOSED_HEADERS } from './http-headers.js';
export { formatLsn, parseLsn } from './lsn.js';
export { memoryPinStore } from './pin-store.js';
export { toProblem } from './problem.js';
export {
  HEADER_LAG_MS,
  HEADER_READ_AFTER_WRITE,
  HEADER_ROUTE,
  HEADER_TOKEN,
} from './request-freshness.js';
export { sessionKeyHasher } from './session-key.js';
export {
  ATTR_BARRIER_LSN,
  ATTR_BARRIER_SOURCE,
  ATTR_BUDGET_PRIORITY,
  ATTR_CONTRACT,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK,
  ATTR_LAG_MS,
  ATTR_NODE,
  ATTR_PIN_KIND,
  ATTR_REASON,
  ATTR_REQUIRED_LSN,
  ATTR_ROUTE,
  ATTR_STALE,
  ATTR_STATE,
  ATTR_STORE_OPERATION,
  ATTR_TRANSITION,
  ATTR_WAIT_OUTCOME,
  METRIC_BARRIERS,
  METRIC_BUDGET_ADMITTED,
  METRIC_BUDGET_BASELINE,
  METRIC_BUDGET_EXHAUSTED,
  METRIC_BUDGET_IN_FLIGHT,
  METRIC_BUDGET_LATENCY,
  METRIC_BUDGET_LIMIT,
  METRIC_BUDGET_LOOP_DELAY,
  METRIC_BUDGET_SHED,
  METRIC_FALLBACKS,
  METRIC_NODE_TRANSITIONS,
  METRIC_PIN_EVICTIONS,
  METRIC_PROBE_DELAY,
  METRIC_REPLICA_LAG,
  METRIC_ROUTES,
  METRIC_STORE_FAILURES,
  METRIC_TOKEN_REJECTIONS,
  METRIC_WAIT_DURATION,
} from './telemetry.js';
export { createTokenCodec } from './token-codec.js';
export * from './types.js';
