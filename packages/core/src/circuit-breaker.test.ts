import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitBreakerSettings } from './circuit-breaker.js';
import type { ConfigError } from './errors.js';
import { ManualClock } from './manual-clock.js';

describe('CircuitBreaker', () => {
  it('opens after the failure threshold and refuses calls while open', () => {
    const clock = new ManualClock();
    const breaker = newBreaker({ failureThreshold: 3, open: 1_000 }, clock);
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
  });

  it('calls that were in flight together fail as one event: a stall does not open the circuit', () => {
    const clock = new ManualClock();
    const breaker = newBreaker({ failureThreshold: 3, open: 1_000 }, clock);
    // Ten calls sent together, all timed out when the process woke from a stall 80 ms later.
    const sentAt = clock.now();
    clock.advance(80);
    for (let i = 0; i < 10; i++) breaker.failure(sentAt);
    expect(breaker.state).toBe('closed');
    // Calls sent after the last counted failure count again: Redis really is gone.
    for (let i = 0; i < 2; i++) {
      const next = clock.now() + 1;
      clock.advance(50);
      breaker.failure(next);
    }
    expect(breaker.state).toBe('open');
  });

  it('a success resets the consecutive-failure count', () => {
    const breaker = newBreaker({ failureThreshold: 2 }, new ManualClock());
    breaker.failure();
    breaker.success();
    breaker.failure();
    expect(breaker.state).toBe('closed');
  });

  it('lets exactly one probe through when half-open; success closes', () => {
    const clock = new ManualClock();
    const changes: string[] = [];
    const breaker = newBreaker(
      { failureThreshold: 1, open: '1s', onChange: (from, to) => changes.push(`${from}>${to}`) },
      clock,
    );
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
    const breaker = newBreaker({ failureThreshold: 1, open: 100, maxOpen: '300ms' }, clock);
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
    const breaker = newBreaker(
      {
        failureThreshold: 1,
        onChange: () => {
          throw new Error('listener bug');
        },
      },
      new ManualClock(),
    );
    expect(() => breaker.failure()).not.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('fails at construction naming the setting as the owner exposes it', () => {
    const option = (settings: CircuitBreakerSettings) => {
      try {
        new CircuitBreaker({ defaults: DEFAULTS, settings, path: 'monitor.breaker.' });
        return null;
      } catch (error) {
        return (error as ConfigError).option;
      }
    };
    expect(option({ open: '1 sec' as never })).toBe('monitor.breaker.open');
    expect(option({ failureThreshold: 0 })).toBe('monitor.breaker.failureThreshold');
    expect(option({ openMs: 5 } as never)).toBe('monitor.breaker.openMs');
    expect(option({ open: '2s', maxOpen: 10_000 })).toBeNull();
  });
});

const DEFAULTS = { failureThreshold: 3, open: 1_000, maxOpen: 30_000 };
function newBreaker(settings: CircuitBreakerSettings, clock: ManualClock) {
  return new CircuitBreaker({ defaults: DEFAULTS, settings, clock });
}
