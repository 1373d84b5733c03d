import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sessionKeyHasher } from './session-key.js';

// The hash written to the pin store and a token's `sid`: it must not change between versions
// (instances of two versions share the pins during a rolling deploy).
function expected(secret: string, sessionKey: string): string {
  const key = Buffer.from(hkdfSync('sha256', secret, '', 'freshgate sid', 32));
  return createHmac('sha256', key).update(sessionKey).digest('base64url').slice(0, 22);
}

describe('sessionKeyHasher', () => {
  it('is HMAC-SHA-256 under the HKDF-derived key, 22 base64url characters, asked once or again', () => {
    const hash = sessionKeyHasher('s3cret');
    const long = `sess:${'x'.repeat(300)}`;
    for (const key of ['sess:4f2a', 'sess:4f2a', 'é-ünïcode', long, long, '']) {
      expect(hash(key)).toBe(expected('s3cret', key));
    }
    expect(hash('sess:4f2a')).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(sessionKeyHasher('other')('sess:4f2a')).not.toBe(hash('sess:4f2a'));
  });

  it('stays right past the keys it remembers (the oldest are forgotten, not mixed up)', () => {
    const hash = sessionKeyHasher('s3cret');
    const keys = Array.from({ length: 5_000 }, (_, i) => `sess:${i}`);
    const first = keys.map(hash);
    for (const [i, key] of keys.entries()) expect(hash(key)).toBe(first[i]);
    expect(first[0]).toBe(expected('s3cret', 'sess:0'));
    expect(first[4_999]).toBe(expected('s3cret', 'sess:4999'));
    expect(new Set(first).size).toBe(5_000);
  });
});
