export { type FreshnessCarrier, forwardFreshness } from './forward.js';
export {
  createFreshFetch,
  DEFAULT_CHANNEL,
  DEFAULT_MAX_TOKEN_TTL,
  type FreshFetch,
  type FreshFetchOptions,
  type FreshRequestInit,
  HEADER_READ_AFTER_WRITE,
  HEADER_TOKEN,
} from './fresh-fetch.js';
export { DEFAULT_STORAGE_KEY, type TokenStorage, type WebStorageLike } from './storage.js';
export { readToken, type TokenInfo } from './token.js';
