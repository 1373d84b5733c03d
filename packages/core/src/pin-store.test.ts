import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';
import { memoryPinStore, memoryPins } from './pin-store.js';
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

  it("a flood of node-only pins under new session keys never evicts another session's LSN pin", async () => {
    class Reader extends MetricReader {
      protected override async onShutdown(): Promise<void> {}
      protected override async onForceFlush(): Promise<void> {}
    }
    const reader = new Reader();
    const meter = new MeterProvider({ readers: [reader] }).getMeter('test');
    const clock = new ManualClock();
    const store = memoryPinStore({ clock, maxEntries: 100, meter });
    await store.extend('victim', { lsn: 0x5000n, node: null, ttlMs: 5000 });
    // Any monotonic read under a new session key records its sticky node.
    for (let i = 0; i < 1000; i++) {
      await store.extend(`attacker-${i}`, { lsn: null, node: 'replica:r1', ttlMs: 600_000 });
    }
    expect((await store.get('victim'))?.lsn).toBe(0x5000n);
    const { resourceMetrics } = await reader.collect();
    const evictions = resourceMetrics.scopeMetrics
      .flatMap((m) => m.metrics)
      .find((m) => m.descriptor.name === 'freshgate.pin.evictions');
    expect(evictions?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([
      [{ 'freshgate.pin.kind': 'node' }, 901],
      // Exported at 0 from the start: the LSN pins were never evicted.
      [{ 'freshgate.pin.kind': 'lsn' }, 0],
    ]);
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

describe('memoryPins', () => {
  it('answers at once, without a promise: the max-merge and TTL of the memory store', () => {
    const clock = new ManualClock();
    const pins = memoryPins({ clock });
    expect(pins.get('a')).toBeUndefined();
    pins.extend('a', { lsn: 5n, node: 'r1', ttlMs: 1_000 });
    pins.extend('a', { lsn: 3n, ttlMs: 2_000 });
    expect(pins.get('a')).toEqual({ lsn: 5n, node: 'r1', ttlMs: 2_000 });
    clock.advance(2_000);
    expect(pins.get('a')).toBeUndefined();
  });
});
