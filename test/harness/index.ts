export {
  findEmbeddedPostgres,
  findPostgres,
  findRedis,
  type PostgresBinaries,
} from './binaries.js';
export { CapacityProxy } from './capacity-proxy.js';
export {
  Cluster,
  type ClusterDescriptor,
  type ClusterOptions,
  failover,
  startCluster,
} from './cluster.js';
export { HarnessError } from './errors.js';
export { HistoryChecker, type HistoryReport, type Violation } from './history-checker.js';
export { LatencyProbe, type ProbeSample } from './latency-probe.js';
export { freePort } from './ports.js';
export { PostgresNode } from './postgres-node.js';
export { RedisCluster, startRedisCluster } from './redis-cluster.js';
export { RedisServer, redisCommand } from './redis-server.js';
export { Replica } from './replica.js';
export { type FailoverTimes, switchover, unplannedFailover } from './switchover.js';
export { type ProxyTarget, TcpProxy } from './tcp-proxy.js';
export { waitFor } from './wait.js';
export { Workspace } from './workspace.js';
