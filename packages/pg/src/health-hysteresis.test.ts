import { describe, expect, it } from 'vitest';
import { HealthHysteresis } from './health-hysteresis.js';

const options = { enterLag: 1_000, enterFor: 5_000, exitLag: 2_000, exitFor: 1_000 };

describe('HealthHysteresis', () => {
  it('judges the first observation at once', () => {
    expect(new HealthHysteresis(options).observe(100, 0)).toBe('healthy');
    expect(new HealthHysteresis(options).observe(3_000, 0)).toBe('lagging');
  });

  it('leaves healthy only after the lag stayed above the exit threshold for the exit duration', () => {
    const health = new HealthHysteresis(options);
    health.observe(0, 0);
    expect(health.observe(2_500, 100)).toBe('healthy');
    expect(health.observe(2_500, 1_000)).toBe('healthy');
    expect(health.observe(2_500, 1_100)).toBe('lagging');
  });

  it('a dip below the exit threshold restarts the exit timer', () => {
    const health = new HealthHysteresis(options);
    health.observe(0, 0);
    health.observe(2_500, 100);
    health.observe(1_500, 900);
    expect(health.observe(2_500, 1_200)).toBe('healthy');
    expect(health.observe(2_500, 2_200)).toBe('lagging');
  });

  it('comes back only after the lag stayed under the enter threshold for the enter duration', () => {
    const health = new HealthHysteresis(options);
    health.observe(5_000, 0);
    expect(health.observe(1_500, 1_000)).toBe('lagging'); // between thresholds: no change
    expect(health.observe(500, 2_000)).toBe('lagging');
    expect(health.observe(500, 6_999)).toBe('lagging');
    expect(health.observe(500, 7_000)).toBe('healthy');
  });

  it('does not flap when the lag oscillates around one threshold', () => {
    const health = new HealthHysteresis(options);
    health.observe(0, 0);
    let changes = 0;
    let last = 'healthy';
    for (let t = 0; t < 60_000; t += 100) {
      const state = health.observe(t % 400 === 0 ? 2_100 : 1_900, t);
      if (state !== last) changes++;
      last = state;
    }
    expect(changes).toBe(0);
  });
});
