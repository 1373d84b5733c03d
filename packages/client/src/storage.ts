/** Where the newest token is kept between calls (and page loads, for `sessionStorage`). */
export interface TokenStorage {
  get(): string | null;
  set(token: string): void;
  remove(): void;
}

/** The part of the Web Storage API used (`sessionStorage`, `localStorage`). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Default key of the token in Web Storage. */
export const DEFAULT_STORAGE_KEY = 'freshgate.token';

export function memoryStorage(): TokenStorage {
  let token: string | null = null;
  return {
    get: () => token,
    set: (value) => {
      token = value;
    },
    remove: () => {
      token = null;
    },
  };
}

/** A {@link TokenStorage} over Web Storage; storage errors (quota, privacy mode) are ignored. */
export function webStorage(storage: WebStorageLike, key: string): TokenStorage {
  return {
    get: () => {
      try {
        return storage.getItem(key);
      } catch {
        return null;
      }
    },
    set: (value) => {
      try {
        storage.setItem(key, value);
      } catch {
        // The in-memory copy still serves this page.
      }
    },
    remove: () => {
      try {
        storage.removeItem(key);
      } catch {}
    },
  };
}
