export {
  AOF_RESTART_WINDOW_MS,
  ATTR_EPOCH_CAUSE,
  DEFAULT_DISTRUST_FOR,
  DEFAULT_INSTANCES,
  DEFAULT_PIN_KEY_PREFIX,
  DEFAULT_WRITE_BACK,
  METRIC_PINS_WRITTEN_BACK,
  METRIC_STORE_EPOCH_CHANGES,
  METRIC_STORE_VOUCHED,
  METRIC_WRITE_BACK_DROPPED,
  redisPinStore,
} from './redis-pin-store.js';
export type {
  RedisClientLike,
  RedisPinStore,
  RedisPinStoreBreakerOptions,
  RedisPinStoreOptions,
  RedisPinStoreStats,
} from './types.js';
