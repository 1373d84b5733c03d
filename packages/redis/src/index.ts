export { DEFAULT_PIN_KEY_PREFIX, redisPinStore } from './redis-pin-store.js';
export type {
  RedisClientLike,
  RedisPinStore,
  RedisPinStoreBreakerOptions,
  RedisPinStoreOptions,
} from './types.js';
