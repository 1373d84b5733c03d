import { describe, expect, it } from 'vitest';
import type { PinStore } from './pin-store.js';

/** What {@link pinStoreContract} needs to exercise one store implementation. */
export interface PinStoreHarness {
  store: PinStore;
  /**
   * Lets `ms` of store time pass: advance a `ManualClock` for the memory store, sleep for a
   * store with real TTLs (the suite uses TTLs of a few hundred ms at most).
   */
  advance(ms: number): Promise<void>;
  /** Called after each test. */
  close?(): Promise<void>;
}

let sequence = 0;
function key(): string {
  sequence += 1;
  return `fg-contract:${process.pid}:${Date.now().toString(36)}:${sequence}`;
}

/**
 * The behaviour every {@link PinStore} implementation must have, as a vitest suite. Call it
 * from a test file of the implementation.
 *
 * @example
 * ```ts
 * import { ManualClock, pinStoreContract } from '@freshgate/core/testing';
 * pinStoreContract('memoryPinStore', () => {
 *   const clock = new ManualClock();
 *   return { store: memoryPinStore({ clock }), advance: async (ms) => clock.advance(ms) };
 * });
 * ```
 */
export function pinStoreContract(
  name: string,
  make: () => PinStoreHarness | Promise<PinStoreHarness>,
): void {
  describe(`PinStore contract: ${name}`, () => {
    async function withStore(run: (h: PinStoreHarness) => Promise<void>): Promise<void> {
      const harness = await make();
      try {
        await run(harness);
      } finally {
        await harness.close?.();
      }
    }

    it('returns undefined for a session without a pin', () =>
      withStore(async ({ store }) => {
        expect(await store.get(key())).toBeUndefined();
      }));

    it('stores the LSN with a node of null and a TTL no longer than requested', () =>
      withStore(async ({ store }) => {
        const k = key();
        await store.extend(k, { lsn: 0x16_b374_d848n, node: null, ttlMs: 300 });
        const pin = await store.get(k);
        expect(pin?.lsn).toBe(0x16_b374_d848n);
        expect(pin?.node).toBeNull();
        expect(pin?.ttlMs).toBeGreaterThan(0);
        expect(pin?.ttlMs).toBeLessThanOrEqual(300);
      }));

    it('never lowers the LSN, also across the 2^53 boundary', () =>
      withStore(async ({ store }) => {
        const k = key();
        const high = 2n ** 53n + 1n;
        await store.extend(k, { lsn: high, ttlMs: 300 });
        await store.extend(k, { lsn: 2n ** 53n, ttlMs: 300 });
        await store.extend(k, { lsn: 5n, ttlMs: 300 });
        expect((await store.get(k))?.lsn).toBe(high);
        await store.extend(k, { lsn: 0xffff_ffff_ffff_ffffn, ttlMs: 300 });
        expect((await store.get(k))?.lsn).toBe(0xffff_ffff_ffff_ffffn);
      }));

    it('keeps the maximum under concurrent writes', () =>
      withStore(async ({ store }) => {
        const k = key();
        const lsns = [7n, 3n, 11n, 2n, 10n, 1n];
        await Promise.all(lsns.map((lsn) => store.extend(k, { lsn, ttlMs: 300 })));
        expect((await store.get(k))?.lsn).toBe(11n);
      }));

    it('a null LSN leaves the stored LSN and can create a node-only pin', () =>
      withStore(async ({ store }) => {
        const k = key();
        await store.extend(k, { lsn: null, node: 'replica:r1', ttlMs: 300 });
        expect(await store.get(k)).toMatchObject({ lsn: null, node: 'replica:r1' });
        await store.extend(k, { lsn: 9n, ttlMs: 300 });
        await store.extend(k, { lsn: null, ttlMs: 300 });
        expect(await store.get(k)).toMatchObject({ lsn: 9n, node: 'replica:r1' });
      }));

    it('sets, keeps and clears the node', () =>
      withStore(async ({ store }) => {
        const k = key();
        await store.extend(k, { lsn: 1n, node: 'replica:r1', ttlMs: 300 });
        await store.extend(k, { lsn: 2n, ttlMs: 300 });
        expect((await store.get(k))?.node).toBe('replica:r1');
        await store.extend(k, { lsn: 2n, node: 'primary', ttlMs: 300 });
        expect((await store.get(k))?.node).toBe('primary');
        await store.extend(k, { lsn: 2n, node: null, ttlMs: 300 });
        expect((await store.get(k))?.node).toBeNull();
      }));

    it('expires a pin after its TTL', () =>
      withStore(async ({ store, advance }) => {
        const k = key();
        await store.extend(k, { lsn: 1n, ttlMs: 100 });
        await advance(150);
        expect(await store.get(k)).toBeUndefined();
      }));

    it('restarts the TTL on every write', () =>
      withStore(async ({ store, advance }) => {
        const k = key();
        await store.extend(k, { lsn: 1n, ttlMs: 200 });
        await advance(120);
        await store.extend(k, { lsn: 1n, ttlMs: 200 });
        await advance(120);
        expect((await store.get(k))?.lsn).toBe(1n);
        await advance(120);
        expect(await store.get(k)).toBeUndefined();
      }));

    it('starts from scratch after expiry (an expired LSN does not come back)', () =>
      withStore(async ({ store, advance }) => {
        const k = key();
        await store.extend(k, { lsn: 50n, node: 'replica:r1', ttlMs: 100 });
        await advance(150);
        await store.extend(k, { lsn: 3n, ttlMs: 300 });
        expect(await store.get(k)).toMatchObject({ lsn: 3n, node: null });
      }));

    it('keeps sessions apart', () =>
      withStore(async ({ store }) => {
        const a = key();
        const b = key();
        await store.extend(a, { lsn: 1n, ttlMs: 300 });
        await store.extend(b, { lsn: 2n, ttlMs: 300 });
        expect((await store.get(a))?.lsn).toBe(1n);
        expect((await store.get(b))?.lsn).toBe(2n);
      }));
  });
}
