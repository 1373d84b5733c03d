import { describe, expect, it } from 'vitest';
import { LsnHistory } from './lsn-history.js';

describe('LsnHistory', () => {
  it('reports no lag for a replica at the newest position, however long the primary has been idle', () => {
    const history = new LsnHistory();
    history.record(0, 100n);
    history.record(60_000, 100n);
    expect(history.lagMs(100n, 60_050)).toBe(0);
    expect(history.lagBytes(100n)).toBe(0);
  });

  it('measures lag from the last moment the primary was still at the replay position', () => {
    const history = new LsnHistory();
    for (let t = 0; t <= 1_000; t += 100) history.record(t, BigInt(t));
    // replayed up to 450: the primary was at 400 until t=400 and past 450 from t=500
    expect(history.lagMs(450n, 1_000)).toBe(600);
    expect(history.lagBytes(450n)).toBe(550);
  });

  it('does not count a long idle period before a write as lag', () => {
    const history = new LsnHistory();
    history.record(0, 100n);
    history.record(600_000, 100n);
    history.record(600_100, 200n);
    expect(history.lagMs(100n, 600_150)).toBe(150);
  });

  it('reports at least the age of the oldest sample for a replica older than the history', () => {
    const history = new LsnHistory(3);
    for (let t = 0; t < 10; t++) history.record(t * 100, BigInt(t + 10));
    expect(history.lagMs(0n, 1_000)).toBe(300);
  });

  it('starts over when the primary position goes backwards', () => {
    const history = new LsnHistory();
    history.record(0, 500n);
    history.record(100, 50n);
    expect(history.latest).toBe(50n);
    expect(history.lagMs(50n, 200)).toBe(0);
  });

  it('knows nothing before the first sample', () => {
    expect(new LsnHistory().lagMs(1n, 0)).toBeNull();
  });
});
