import { describe, expect, it } from 'vitest';
import { LruCache } from './lru-cache.js';

function filled(max: number, keys: string[]): LruCache<string, number> {
  const cache = new LruCache<string, number>(max);
  for (const [i, key] of keys.entries()) cache.set(key, i);
  return cache;
}

describe('LruCache', () => {
  it('holds at most its capacity and drops the oldest entry first', () => {
    const cache = filled(4, ['a', 'b', 'c', 'd', 'e']);
    expect(cache.size).toBe(4);
    expect(cache.get('a')).toBeUndefined();
    expect(['b', 'c', 'd', 'e'].map((k) => cache.get(k))).toEqual([1, 2, 3, 4]);
  });

  it('keeps an entry used since it became one of the older ones', () => {
    const cache = filled(4, ['a', 'b', 'c', 'd']);
    expect(cache.get('a')).toBe(0);
    cache.set('e', 4);
    cache.set('f', 5);
    expect(cache.get('a')).toBe(0);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeUndefined();
  });

  it('keeps a hot entry through any number of new ones', () => {
    const cache = new LruCache<string, number>(8);
    cache.set('hot', -1);
    for (let i = 0; i < 1_000; i++) {
      cache.set(`k${i}`, i);
      expect(cache.get('hot')).toBe(-1);
    }
    expect(cache.size).toBe(8);
  });

  it('replaces a value, deletes, and holds nothing with a capacity of 0', () => {
    const cache = filled(2, ['a']);
    cache.set('a', 7);
    expect(cache.get('a')).toBe(7);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    const none = filled(0, ['a']);
    expect([none.size, none.get('a')]).toEqual([0, undefined]);
  });
});
