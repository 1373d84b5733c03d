import { describe, expect, it } from 'vitest';
import { decodePin, encodeLsn, extendArguments, pinKey } from './pin-script.js';

describe('pin value encoding', () => {
  it('writes LSNs as 16 lowercase hex digits, so that the script can compare them exactly', () => {
    expect(encodeLsn(0n)).toBe('0000000000000000');
    expect(encodeLsn(0x16_b374_d848n)).toBe('00000016b374d848');
    expect(encodeLsn(2n ** 53n + 1n)).toBe('0020000000000001');
    expect(encodeLsn(0xffff_ffff_ffff_ffffn)).toBe('ffffffffffffffff');
    expect(() => encodeLsn(2n ** 64n)).toThrow(RangeError);
    expect(() => encodeLsn(-1n)).toThrow(RangeError);
  });

  it('encodes the node action: undefined keeps, null clears, a string sets', () => {
    expect(extendArguments({ lsn: 5n, ttlMs: 300 }, 1_000)).toEqual([
      '0000000000000005',
      'k',
      '',
      300,
      1_300,
    ]);
    expect(extendArguments({ lsn: null, node: null, ttlMs: 300 }, 0)[1]).toBe('c');
    expect(extendArguments({ lsn: null, node: 'replica:r1', ttlMs: 300 }, 0).slice(0, 3)).toEqual([
      '',
      's',
      'replica:r1',
    ]);
  });

  it('decodes what the script stores, with a node that contains ":"', () => {
    expect(decodePin('1:ffffffffffffffff:10300:300:replica:a:b', 10_000)).toEqual({
      lsn: 0xffff_ffff_ffff_ffffn,
      node: 'replica:a:b',
      ttlMs: 300,
    });
    expect(decodePin('1::10300:300:', 10_100)).toEqual({ lsn: null, node: null, ttlMs: 200 });
  });

  it('clamps the TTL estimate to [1, ttl] when the writer’s clock is skewed', () => {
    expect(decodePin('1::10300:300:', 50_000)?.ttlMs).toBe(1);
    expect(decodePin('1::90000:300:', 10_000)?.ttlMs).toBe(300);
  });

  it('refuses values it did not write', () => {
    expect(decodePin('hello', 0)).toBeNull();
    expect(decodePin('2::1:1:', 0)).toBeNull();
    expect(decodePin('1:123:1:1:', 0)).toBeNull();
  });
});

describe('pin keys', () => {
  it('hash the session key: nothing raw, fixed length, no hash tag', () => {
    const key = pinKey('freshgate:pin:', 'sess:{user-42}');
    expect(key).toMatch(/^freshgate:pin:[A-Za-z0-9_-]{22}$/);
    expect(key).not.toContain('user-42');
    expect(pinKey('freshgate:pin:', 'sess:{user-42}')).toBe(key);
    expect(pinKey('freshgate:pin:', 'sess:{user-43}')).not.toBe(key);
  });
});
