export {
  createFreshgate,
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
  type QueryConfigInput,
  type QueryInput,
} from './data-source.js';
export type { HysteresisOptions } from './health-hysteresis.js';
export { HotStandbyClient, type HotStandbyClientClass } from './hot-standby.js';
export type { MonitorOptions, QuarantineReason, ReplicaMonitor } from './monitor.js';
export type { PoolClientLike, PoolConfigLike, PoolLike, QueryResultLike } from './pg-types.js';
export type { ProbeOptions, ProbeReplicaStatus, ReplicaProbe } from './probe.js';
