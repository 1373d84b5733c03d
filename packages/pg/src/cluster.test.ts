import { ConfigError, type FreshgateError } from '@freshgate/core';
import { describe, expect, it } from 'vitest';
import { createFreshgate, type FreshgateOptions } from './cluster.js';

// No database is reached: pools connect lazily and the Freshgates are never started.
const base = {
  primary: 'postgres://127.0.0.1:1/none',
  replicas: { r1: 'postgres://127.0.0.1:1/none' },
  secret: 'cluster-unit-test-secret-long-enough!!',
};

async function failure(options: Record<string, unknown>): Promise<ConfigError | null> {
  try {
    const gate = await createFreshgate({ ...base, ...options } as FreshgateOptions);
    await gate.close();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
}

describe('createFreshgate: every misconfiguration fails at start-up with the real option name', () => {
  it('checks the monitor options, naming them under monitor.', async () => {
    expect((await failure({ monitor: { intervalMs: 50 } }))?.message).toMatch(
      /`monitor.intervalMs`.*Did you mean "interval"/,
    );
    expect((await failure({ monitor: { interval: '5 sec' } }))?.option).toBe('monitor.interval');
    expect((await failure({ monitor: { jitter: 2 } }))?.option).toBe('monitor.jitter');
    expect((await failure({ monitor: { timeout: 0 } }))?.option).toBe('monitor.timeout');
    expect((await failure({ monitor: { health: { exitLagMs: 1 } } }))?.option).toBe(
      'monitor.health.exitLagMs',
    );
    expect((await failure({ monitor: { breaker: { open: -1 } } }))?.option).toBe(
      'monitor.breaker.open',
    );
    expect(
      await failure({
        monitor: { interval: '50ms', health: { exitLag: '2s' }, breaker: { open: 100 } },
      }),
    ).toBeNull();
  });

  it('takes durations as ms or strings, and names the old *Ms options as unknown', async () => {
    expect((await failure({ statementTimeoutMs: 100 }))?.message).toMatch(
      /`statementTimeoutMs`.*Did you mean "statementTimeout"/,
    );
    expect((await failure({ waitPollInterval: 'soon' }))?.option).toBe('waitPollInterval');
    expect((await failure({ tokenMaxLength: 2048 }))?.option).toBe('tokenMaxLength');
    expect((await failure({ token: { maxLength: 10 } }))?.option).toBe('token.maxLength');
    expect(await failure({ statementTimeout: '2s', waitPollInterval: 5 })).toBeNull();
  });

  it('refuses to start requests before start() resolved, naming the fix', async () => {
    const gate = await createFreshgate(base);
    try {
      const error = (() => {
        try {
          gate.begin();
        } catch (e) {
          return e as FreshgateError;
        }
      })();
      expect(error?.code).toBe('ERR_FRESHGATE_NOT_STARTED');
      expect(error?.message).toMatch(/await gate\.start\(\)/);
    } finally {
      await gate.close();
    }
  });
});
