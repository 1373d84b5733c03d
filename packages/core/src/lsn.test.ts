import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FreshgateError, InvalidLsnError } from './errors.js';
import { formatLsn, MAX_LSN, maxLsn, parseLsn, tryParseLsn } from './lsn.js';

const lsn = fc.bigInt({ min: 0n, max: MAX_LSN });

describe('parseLsn / formatLsn', () => {
  it('reads and prints PostgreSQL text form', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16_b374_d848n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('ffffffff/ffffffff')).toBe(MAX_LSN);
    expect(parseLsn('00000001/0000000A')).toBe(0x1_0000_000an);
    expect(formatLsn(0x16_b374_d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn(MAX_LSN)).toBe('FFFFFFFF/FFFFFFFF');
  });

  it.each([
    '',
    '16',
    '/1',
    '1/',
    '1//2',
    '123456789/0',
    '0/123456789',
    ' 1/2',
    '1/2 ',
    '-1/2',
    '+1/2',
    '0x1/2',
    '1/G',
    '1.5/2',
    '1/2/3',
  ])('rejects %j with a typed error', (text) => {
    expect(() => parseLsn(text)).toThrow(InvalidLsnError);
    expect(tryParseLsn(text)).toBeUndefined();
    try {
      parseLsn(text);
    } catch (err) {
      expect(err).toBeInstanceOf(FreshgateError);
      expect((err as FreshgateError).code).toBe('ERR_FRESHGATE_INVALID_LSN');
    }
  });

  it('rejects non-strings and out-of-range values', () => {
    expect(tryParseLsn(42)).toBeUndefined();
    expect(tryParseLsn(null)).toBeUndefined();
    expect(() => formatLsn(-1n)).toThrow(InvalidLsnError);
    expect(() => formatLsn(MAX_LSN + 1n)).toThrow(InvalidLsnError);
  });

  it('parse ∘ format is the identity on every 64-bit value', () => {
    fc.assert(fc.property(lsn, (value) => parseLsn(formatLsn(value)) === value));
  });

  it('format ∘ parse normalises any valid text to the canonical form', () => {
    const half = fc.stringMatching(/^[0-9A-Fa-f]{1,8}$/);
    fc.assert(
      fc.property(half, half, (hi, lo) => {
        const text = `${hi}/${lo}`;
        const formatted = formatLsn(parseLsn(text));
        expect(parseLsn(formatted)).toBe(parseLsn(text));
        expect(formatted).toMatch(/^(0|[1-9A-F][0-9A-F]*)\/(0|[1-9A-F][0-9A-F]*)$/);
      }),
    );
  });

  it('orders parsed LSNs as unsigned 64-bit integers, unlike strings', () => {
    expect(parseLsn('9/0') < parseLsn('10/0')).toBe(true);
    expect('9/0' < '10/0').toBe(false);
    fc.assert(
      fc.property(lsn, lsn, (a, b) => {
        const pa = parseLsn(formatLsn(a));
        const pb = parseLsn(formatLsn(b));
        expect(pa < pb).toBe(a < b);
        expect(pa === pb).toBe(a === b);
      }),
    );
  });

  it('maxLsn treats null as unknown', () => {
    expect(maxLsn(null, null)).toBeNull();
    expect(maxLsn(null, 3n)).toBe(3n);
    expect(maxLsn(7n, 3n)).toBe(7n);
  });
});
