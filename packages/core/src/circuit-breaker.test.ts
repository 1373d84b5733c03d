import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';
import { ManualClock } from './manual-clock.js';

describe('CircuitBreaker', () => {
  it('opens after the failure threshold and refuses calls while open', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 1_000, clock });
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
  });

  it('a success resets the consecutive-failure count', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2, clock: new ManualClock() });
    breaker.failure();
    breaker.success();
    breaker.failure();
    expect(breaker.state).toBe('closed');
  });

  it('lets exactly one probe through when half-open; success closes', () => {
    const clock = new ManualClock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      openMs: 1_000,
      clock,
      onChange: (from, to) => changes.push(`${from}>${to}`),
    });
    breaker.failure();
    clock.advance(999);
    expect(breaker.allow()).toBe(false);
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('a failed probe reopens for twice as long, capped', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 100, maxOpenMs: 300, clock });
    breaker.failure();
    for (const expectedOpen of [200, 300, 300]) {
      clock.advance(1_000);
      expect(breaker.allow()).toBe(true);
      breaker.failure();
      clock.advance(expectedOpen - 1);
      expect(breaker.allow()).toBe(false);
      clock.advance(1);
      expect(breaker.state).toBe('half-open');
    }
  });

  it('ignores a throwing listener', () => {
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      clock: new ManualClock(),
      onChange: () => {
        throw new Error('listener bug');
      },
    });
    expect(() => breaker.failure()).not.toThrow();
    expect(breaker.state).toBe('open');
  });
});
