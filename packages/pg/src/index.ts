export {
  createFreshgate,
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_WAIT_POLL_MS,
  Freshgate,
  type FreshgateOptions,
  type FreshgateStatus,
  type FreshRequest,
  type NodeInput,
  type ReplicaInput,
} from './cluster.js';
export { currentDb } from './current-db.js';
export {
  type CommitLsnFunction,
  FreshDataSource,
  type Queryable,
  type QueryInput,
} from './data-source.js';
export {
  DEFAULT_ENTER_FOR_MS,
  DEFAULT_ENTER_LAG_MS,
  DEFAULT_EXIT_FOR_MS,
  DEFAULT_EXIT_LAG_MS,
  HealthHysteresis,
  type HysteresisOptions,
} from './health-hysteresis.js';
export { DEFAULT_HISTORY_SIZE, LsnHistory } from './lsn-history.js';
export {
  DEFAULT_MONITOR_INTERVAL_MS,
  DEFAULT_MONITOR_JITTER,
  DEFAULT_MONITOR_TIMEOUT_MS,
  DEFAULT_QUARANTINE_MS,
  type MonitorOptions,
  type QuarantineReason,
  ReplicaMonitor,
} from './monitor.js';
export type { PoolClientLike, PoolLike, QueryResultLike } from './pg-types.js';
export { type StatementScope, unsafeStatement } from './session-statement.js';
export { type StatementKind, statementKind } from './statement-kind.js';
