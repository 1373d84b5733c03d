/**
 * A bounded map that drops the least recently used entry when full. Internal: the verified
 * token cache.
 *
 * A hit moves its entry to the newest end only when it sits in the older half of the map
 * (inserted more than half the capacity of insertions ago): a hot entry is moved once per
 * half a cache of new entries instead of on every hit, and an entry touched since it fell
 * into the older half is never the one dropped.
 */
export class LruCache<K, V> {
  readonly #map = new Map<K, { value: V; stamp: number }>();
  readonly #max: number;
  /** Insertions so far: an entry's stamp is the count at its last insertion. */
  #stamp = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (this.#stamp - entry.stamp > this.#max / 2) {
      this.#map.delete(key);
      entry.stamp = ++this.#stamp;
      this.#map.set(key, entry);
    }
    return entry.value;
  }

  set(key: K, value: V): void {
    if (this.#max <= 0) return;
    this.#map.delete(key);
    this.#map.set(key, { value, stamp: ++this.#stamp });
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.#map.delete(key);
  }
}
