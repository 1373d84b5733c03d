import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';
import { memoryPinStore } from './pin-store.js';
import { pinStoreContract } from './pin-store-contract.js';

pinStoreContract('memoryPinStore', () => {
  const clock = new ManualClock();
  return { store: memoryPinStore({ clock }), advance: async (ms) => clock.advance(ms) };
});

describe('memoryPinStore', () => {
  it('drops the least recently written pin when full', async () => {
    const clock = new ManualClock();
    const store = memoryPinStore({ clock, maxEntries: 2 });
    await store.extend('a', { lsn: 1n, ttlMs: 1000 });
    await store.extend('b', { lsn: 2n, ttlMs: 1000 });
    await store.extend('a', { lsn: 3n, ttlMs: 1000 });
    await store.extend('c', { lsn: 4n, ttlMs: 1000 });
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('a'))?.lsn).toBe(3n);
    expect((await store.get('c'))?.lsn).toBe(4n);
  });

  it('reports the remaining TTL', async () => {
    const clock = new ManualClock();
    const store = memoryPinStore({ clock });
    await store.extend('a', { lsn: 1n, ttlMs: 5000 });
    clock.advance(1200);
    expect((await store.get('a'))?.ttlMs).toBe(3800);
  });

  it('rejects a bad capacity', () => {
    expect(() => memoryPinStore({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
