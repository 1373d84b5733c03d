export {
  DEFAULT_BREAKER_FAILURE_THRESHOLD,
  DEFAULT_BREAKER_MAX_OPEN_MS,
  DEFAULT_BREAKER_OPEN_MS,
  DEFAULT_LOCAL_PINS,
  DEFAULT_PIN_KEY_PREFIX,
  DEFAULT_REDIS_TIMEOUT,
  redisPinStore,
} from './redis-pin-store.js';
export type {
  RedisClientLike,
  RedisPinStore,
  RedisPinStoreBreakerOptions,
  RedisPinStoreOptions,
} from './types.js';
