import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { COARSE_CLOCK_MS, coarseNow } from './clock.js';

describe('coarseNow', () => {
  it('reads the clock once per interval, and again once the interval has passed', async () => {
    const before = Date.now();
    const first = coarseNow();
    // Within the interval of an earlier reading, or read now.
    expect(first).toBeGreaterThanOrEqual(before - COARSE_CLOCK_MS * 20);
    expect(first).toBeLessThanOrEqual(Date.now());
    // The same reading until the timer marks it stale: no clock read per call.
    expect(coarseNow()).toBe(first);
    await sleep(COARSE_CLOCK_MS * 3);
    const later = coarseNow();
    expect(later).toBeGreaterThan(first);
    expect(later).toBeLessThanOrEqual(Date.now());
  });
});
