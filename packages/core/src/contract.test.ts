import { describe, expect, it } from 'vitest';
import { defineContract, parseReadAfterWrite } from './contract.js';
import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseDuration', () => {
  it.each([
    [150, 150],
    ['200ms', 200],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['1h', 3_600_000],
  ] as const)('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['5 minutes', '', 's', '-1s', 'abc', Number.NaN, -1])(
    'rejects %j naming the option',
    (input) => {
      const err = configError(() => parseDuration(input as never, 'maxLag'));
      expect(err.option).toBe('maxLag');
      expect(err.code).toBe('ERR_FRESHGATE_CONFIG');
    },
  );
});

describe('defineContract', () => {
  it('normalises names with the default primary fallback', () => {
    const c = defineContract('monotonic');
    expect(c).toMatchObject({ level: 'monotonic', maxLagMs: null, tags: null, label: 'monotonic' });
    expect(c.fallbacks).toEqual([{ kind: 'primary' }]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(defineContract(c)).toBe(c);
  });

  it('normalises bounded staleness, chains, nested waits and tags', () => {
    const c = defineContract({
      maxLag: '5s',
      // biome-ignore lint/suspicious/noThenProperty: `then` is the documented fallback key; its value is never a function.
      fallback: [{ wait: '200ms', then: { wait: 100, then: 'stale' } }, 'error'],
      tags: { pool: 'reporting' },
    });
    expect(c.level).toBe('bounded');
    expect(c.maxLagMs).toBe(5000);
    expect(c.fallbacks).toEqual([
      { kind: 'wait', timeoutMs: 200 },
      { kind: 'wait', timeoutMs: 100 },
      { kind: 'stale' },
      { kind: 'error' },
    ]);
    expect(c.tags).toEqual({ pool: 'reporting' });
    expect(defineContract({ contract: 'eventual', fallback: 'stale' }).fallbacks).toEqual([
      { kind: 'stale' },
    ]);
  });

  it('suggests the closest contract name', () => {
    const err = configError(() => defineContract('monotonc' as never, 'routes[GET /feed]'));
    expect(err.option).toBe('routes[GET /feed]');
    expect(err.message).toContain('Did you mean "monotonic"?');
    expect(
      configError(() => defineContract({ contract: 'read-your-write' as never })).message,
    ).toContain('Did you mean "read-your-writes"?');
  });

  it('suggests the closest option key', () => {
    expect(configError(() => defineContract({ maxlag: '5s' } as never)).message).toContain(
      'Did you mean "maxLag"?',
    );
    expect(
      configError(() => defineContract({ contract: 'eventual', fallbak: 'stale' } as never))
        .message,
    ).toContain('Did you mean "fallback"?');
  });

  it('rejects bad fallbacks and durations at definition time', () => {
    expect(
      configError(() => defineContract({ contract: 'monotonic', fallback: 'primay' as never }))
        .message,
    ).toContain('Did you mean "primary"?');
    expect(configError(() => defineContract({ maxLag: 'soon' as never })).option).toBe(
      'contract.maxLag',
    );
    expect(
      configError(() => defineContract({ contract: 'eventual', fallback: { wait: 0 } })).option,
    ).toBe('contract.fallback.wait');
    expect(configError(() => defineContract({ contract: 'eventual', fallback: [] })).option).toBe(
      'contract.fallback',
    );
    expect(
      configError(() => defineContract({ contract: 'strong', fallback: 'stale' })).option,
    ).toBe('contract.fallback');
    expect(
      configError(() => defineContract({ contract: 'monotonic', maxLag: 1 } as never)).message,
    ).toContain('either');
    expect(
      configError(() => defineContract({ contract: 'eventual', tags: { pool: 1 } as never }))
        .option,
    ).toBe('contract.tags.pool');
  });
});

describe('X-Read-After-Write', () => {
  it.each([
    ['true', true],
    [' TRUE ', true],
    ['1', true],
    ['True', true],
    ['false', false],
    ['0', false],
    ['yes', false],
    ['', false],
    [undefined, false],
    ['true, false', false],
  ] as const)('%j → %s', (value, expected) => {
    expect(parseReadAfterWrite(value)).toBe(expected);
  });

  it('accepts a repeated header when one value is true', () => {
    expect(parseReadAfterWrite(['0', 'true'])).toBe(true);
  });
});

describe('a chain that ends with a wait', () => {
  it('reads the primary after the wait unless told otherwise', () => {
    expect(
      defineContract({ contract: 'read-your-writes', fallback: { wait: 50 } }).fallbacks,
    ).toEqual([{ kind: 'wait', timeoutMs: 50 }, { kind: 'primary' }]);
    expect(
      defineContract({ contract: 'read-your-writes', fallback: [{ wait: 50 }, 'error'] }).fallbacks,
    ).toEqual([{ kind: 'wait', timeoutMs: 50 }, { kind: 'error' }]);
  });
});
