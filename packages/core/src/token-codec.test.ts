import { createHmac, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { CompactSign, compactVerify, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { parseLsn } from './lsn.js';
import { ManualClock } from './manual-clock.js';
import { createTokenCodec } from './token-codec.js';

const SECRET = 'a-very-long-test-secret-of-at-least-32-bytes!';
const CID = '7301234567890123456/1';
const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function forge(header: object, payload: object, sign: (input: string) => string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(input)}`;
}

function hmac(secret: string | Buffer) {
  return (input: string) => createHmac('sha256', secret).update(input).digest('base64url');
}

function claims(clock: ManualClock, over: Record<string, unknown> = {}) {
  const iat = Math.floor(clock.now() / 1000);
  return { v: 1, lsn: '16/B374D848', cid: CID, iat, exp: iat + 600, ...over };
}

async function hsCodec(clock = new ManualClock()) {
  const codec = await createTokenCodec({ keys: [{ kid: 'k1', secret: SECRET }], clock });
  return { codec, clock };
}

describe('createTokenCodec', () => {
  it('signs a compact JWS with alg, kid and typ, and verifies it', async () => {
    const { codec, clock } = await hsCodec();
    const signed = await codec.sign({ lsn: parseLsn('16/B374D848'), cid: CID, sid: 'abc' });
    const [header, payload] = signed.token.split('.');
    expect(JSON.parse(Buffer.from(header as string, 'base64url').toString())).toEqual({
      alg: 'HS256',
      kid: 'k1',
      typ: 'freshgate+jwt',
    });
    expect(JSON.parse(Buffer.from(payload as string, 'base64url').toString())).toEqual({
      v: 1,
      lsn: '16/B374D848',
      cid: CID,
      sid: 'abc',
      iat: clock.now() / 1000,
      exp: clock.now() / 1000 + 600,
    });
    expect(signed.maxAgeSeconds).toBe(600);
    const result = await codec.verify(signed.token, { cid: CID });
    expect(result).toMatchObject({ ok: true, lsn: 0x16_b374_d848n, cid: CID, sid: 'abc' });
  });

  it('carries the replica a read ran on (node), after sid', async () => {
    const { codec, clock } = await hsCodec();
    const signed = await codec.sign({ lsn: 5n, cid: CID, node: 'replica:r1' });
    const payload = signed.token.split('.')[1] as string;
    expect(Object.keys(JSON.parse(Buffer.from(payload, 'base64url').toString()))).toEqual([
      'v',
      'lsn',
      'cid',
      'node',
      'iat',
      'exp',
    ]);
    expect(signed.iat).toBe(clock.now() / 1000);
    // From the cache (the signer's own) and from the bytes (another instance's).
    expect(await codec.verify(signed.token)).toMatchObject({ ok: true, node: 'replica:r1' });
    const other = (await hsCodec()).codec;
    expect(await other.verify(signed.token)).toMatchObject({ ok: true, node: 'replica:r1' });
    expect(await other.verify((await codec.sign({ lsn: 5n, cid: CID })).token)).toMatchObject({
      ok: true,
      node: undefined,
    });
  });

  it('signs HS256 tokens byte for byte as jose does', async () => {
    const clock = new ManualClock(1_700_000_000_500);
    const codec = await createTokenCodec({ secret: SECRET, clock });
    const { token } = await codec.sign({ lsn: 0x16b374d848n, cid: '7301/1', sid: 'abc' });
    const [header] = token.split('.') as [string];
    const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string };
    const key = new TextEncoder().encode(SECRET);
    const expected = await new CompactSign(
      new TextEncoder().encode(
        JSON.stringify({
          v: 1,
          lsn: '16/B374D848',
          cid: '7301/1',
          sid: 'abc',
          iat: 1_700_000_000,
          exp: 1_700_000_600,
        }),
      ),
    )
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'freshgate+jwt' })
      .sign(key);
    expect(token).toBe(expected);
    await expect(compactVerify(token, key, { algorithms: ['HS256'] })).resolves.toBeTruthy();
  });

  it('verifies a token it did not sign itself (cold path, other instance)', async () => {
    const clock = new ManualClock();
    const a = await createTokenCodec({ secret: SECRET, clock });
    const b = await createTokenCodec({ secret: SECRET, clock });
    const { token } = await a.sign({ lsn: 5n, cid: CID });
    expect(b.verifyCached(token, { cid: CID })).toBeUndefined();
    expect(await b.verify(token, { cid: CID })).toMatchObject({ ok: true, lsn: 5n });
    expect(b.verifyCached(token, { cid: CID })).toMatchObject({ ok: true, lsn: 5n });
  });

  it('accepts only the canonical compact form: no padding, whitespace or alternate last characters', async () => {
    const clock = new ManualClock();
    const a = await createTokenCodec({ secret: SECRET, clock });
    const { token } = await a.sign({ lsn: 5n, cid: CID });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // The same bytes under another spelling: a decoder ignores the unused low bits.
    const respell = (segment: string) => {
      const unused = segment.length % 4 === 2 ? 4 : 2;
      const last = ALPHABET.indexOf(segment.at(-1) as string);
      return segment.slice(0, -1) + ALPHABET[last + 1 < 1 << unused ? last + 1 : last - 1];
    };
    expect(signature).toHaveLength(43);
    const variants = [
      `${token}=`,
      `${header}.${payload}.${signature}=`,
      `${header}.${payload} .${signature}`,
      `${header}.${payload}.${signature.slice(0, 20)}\t${signature.slice(20)}`,
      `${header}.${payload}.${respell(signature)}`,
      ...(header.length % 4 === 0 ? [] : [`${respell(header)}.${payload}.${signature}`]),
      ...(payload.length % 4 === 0 ? [] : [`${header}.${respell(payload)}.${signature}`]),
    ];
    // A cold codec (another process): each variant would otherwise cost a full verify.
    const b = await createTokenCodec({ secret: SECRET, clock });
    for (const variant of variants) {
      expect(variant).not.toBe(token);
      expect(await b.verify(variant, { cid: CID })).toEqual({ ok: false, reason: 'malformed' });
      expect(b.verifyCached(variant, { cid: CID })).toEqual({ ok: false, reason: 'malformed' });
    }
    // A signature longer than the algorithm's is refused before any verify.
    expect(await b.verify(`${token}AAAA`, { cid: CID })).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(await b.verify(token, { cid: CID })).toMatchObject({ ok: true, lsn: 5n });
  });

  it('rejects a tampered payload or signature', async () => {
    const { codec } = await hsCodec();
    const { token } = await codec.sign({ lsn: 5n, cid: CID });
    const [h, p, s] = token.split('.') as [string, string, string];
    const raised = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), lsn: 'FF/0' });
    const fresh = await hsCodec();
    expect(await fresh.codec.verify(`${h}.${raised}.${s}`)).toEqual({
      ok: false,
      reason: 'signature',
    });
    // The next-to-last character: the last one's two low bits are padding (set, the token is
    // malformed rather than forged).
    const flipped = `${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`;
    expect(await fresh.codec.verify(`${h}.${p}.${flipped}`)).toEqual({
      ok: false,
      reason: 'signature',
    });
  });

  it('does not take a cached signature for a token with another payload', async () => {
    const { codec } = await hsCodec();
    const { token } = await codec.sign({ lsn: 5n, cid: CID });
    expect(codec.verifyCached(token)).toMatchObject({ ok: true, lsn: 5n });
    const [h, p, s] = token.split('.') as [string, string, string];
    const raised = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), lsn: 'FF/0' });
    // The same signature under a raised LSN: the cache, keyed by the last characters, must not answer it.
    expect(codec.verifyCached(`${h}.${raised}.${s}`)).toBeUndefined();
    expect(codec.verifyNow(`${h}.${raised}.${s}`)).toEqual({ ok: false, reason: 'signature' });
    expect(await codec.verify(`${h}.${raised}.${s}`)).toEqual({ ok: false, reason: 'signature' });
    // The genuine token is still cached.
    expect(codec.verifyCached(token)).toMatchObject({ ok: true, lsn: 5n });
  });

  it('rejects expired tokens, also from the cache', async () => {
    const { codec, clock } = await hsCodec();
    const { token } = await codec.sign({ lsn: 5n, cid: CID });
    clock.advance(599_000);
    expect((await codec.verify(token)).ok).toBe(true);
    clock.advance(1_000);
    expect(await codec.verify(token)).toEqual({ ok: false, reason: 'expired' });
    const other = await hsCodec(clock);
    expect(await other.codec.verify(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('rejects a token signed with another secret under a known kid', async () => {
    const { codec, clock } = await hsCodec();
    const token = forge(
      { alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt' },
      claims(clock),
      hmac('x'.repeat(40)),
    );
    expect(await codec.verify(token)).toEqual({ ok: false, reason: 'signature' });
  });

  it('rejects alg: none and unlisted algorithms', async () => {
    const { codec, clock } = await hsCodec();
    const none = `${b64({ alg: 'none', kid: 'k1', typ: 'freshgate+jwt' })}.${b64(claims(clock))}.`;
    // No signature at all is not even the compact form.
    expect(await codec.verify(none)).toEqual({ ok: false, reason: 'malformed' });
    expect(await codec.verify(`${none}${'A'.repeat(43)}`)).toEqual({
      ok: false,
      reason: 'algorithm',
    });
    const hs512 = forge(
      { alg: 'HS512', kid: 'k1', typ: 'freshgate+jwt' },
      claims(clock),
      hmac(SECRET),
    );
    expect(await codec.verify(hs512)).toEqual({ ok: false, reason: 'algorithm' });
  });

  it('rejects HS256 tokens MACed with a public key (algorithm confusion), and RS256 tokens', async () => {
    const clock = new ManualClock();
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const codec = await createTokenCodec({
      keys: [
        { kid: 'es', alg: 'ES256', publicKey, privateKey },
        { kid: 'hs', secret: SECRET },
      ],
      clock,
    });
    const pem = await exportSPKI(publicKey);
    const confused = forge(
      { alg: 'HS256', kid: 'es', typ: 'freshgate+jwt' },
      claims(clock),
      hmac(pem),
    );
    expect(await codec.verify(confused)).toEqual({ ok: false, reason: 'algorithm' });

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs256 = forge({ alg: 'RS256', kid: 'es', typ: 'freshgate+jwt' }, claims(clock), (input) =>
      nodeSign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url'),
    );
    expect(await codec.verify(rs256)).toEqual({ ok: false, reason: 'algorithm' });
    const esOnly = await createTokenCodec({
      keys: [{ kid: 'es', alg: 'ES256', publicKey }],
      clock,
    });
    expect(
      await esOnly.verify(
        forge({ alg: 'HS256', kid: 'es', typ: 'freshgate+jwt' }, claims(clock), hmac(pem)),
      ),
    ).toEqual({
      ok: false,
      reason: 'algorithm',
    });
  });

  it('rejects a wrong or missing typ', async () => {
    const { codec, clock } = await hsCodec();
    const jwt = forge({ alg: 'HS256', kid: 'k1', typ: 'JWT' }, claims(clock), hmac(SECRET));
    expect(await codec.verify(jwt)).toEqual({ ok: false, reason: 'typ' });
    const none = forge({ alg: 'HS256', kid: 'k1' }, claims(clock), hmac(SECRET));
    expect(await codec.verify(none)).toEqual({ ok: false, reason: 'typ' });
  });

  it('rejects a token of another cluster (or from before a failover), also when cached', async () => {
    const { codec } = await hsCodec();
    const { token } = await codec.sign({ lsn: 5n, cid: CID });
    expect(await codec.verify(token, { cid: '7301234567890123456/2' })).toEqual({
      ok: false,
      reason: 'foreign-cluster',
    });
    const cold = await hsCodec();
    expect(await cold.codec.verify(token, { cid: 'other/1' })).toEqual({
      ok: false,
      reason: 'foreign-cluster',
    });
    expect((await codec.verify(token, { cid: CID })).ok).toBe(true);
  });

  it('rejects oversize tokens before parsing them', async () => {
    const codec = await createTokenCodec({ secret: SECRET, maxLength: 200 });
    const huge = `${'a'.repeat(300)}.b.c`;
    expect(await codec.verify(huge)).toEqual({ ok: false, reason: 'oversize' });
    expect(codec.verifyCached(huge)).toEqual({ ok: false, reason: 'oversize' });
  });

  it('rejects malformed input without throwing', async () => {
    const { codec } = await hsCodec();
    for (const input of ['', 'abc', 'a.b', 'a.b.c.d', '!!!.###.$$$', 42, null, undefined, {}]) {
      expect(await codec.verify(input)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('rejects unknown kids and bad claims', async () => {
    const { codec, clock } = await hsCodec();
    const unknownKid = forge(
      { alg: 'HS256', kid: 'k9', typ: 'freshgate+jwt' },
      claims(clock),
      hmac(SECRET),
    );
    expect(await codec.verify(unknownKid)).toEqual({ ok: false, reason: 'unknown-kid' });
    const noKid = forge({ alg: 'HS256', typ: 'freshgate+jwt' }, claims(clock), hmac(SECRET));
    expect(await codec.verify(noKid)).toEqual({ ok: false, reason: 'unknown-kid' });
    for (const bad of [
      { v: 2 },
      { lsn: '16-B374' },
      { lsn: 5 },
      { cid: '' },
      { cid: 7 },
      { sid: 3 },
      { node: 3 },
      { node: '' },
      { node: 'x'.repeat(200) },
      { iat: 'now' },
      { exp: 1.5 },
      { exp: 0 },
    ]) {
      const token = forge(
        { alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt' },
        claims(clock, bad),
        hmac(SECRET),
      );
      expect(await codec.verify(token), JSON.stringify(bad)).toEqual({
        ok: false,
        reason: 'claims',
      });
    }
    const notJson = `${b64({ alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt' })}.${b64('not json')}`;
    expect(await codec.verify(`${notJson}.${hmac(SECRET)(notJson)}`)).toEqual({
      ok: false,
      reason: 'claims',
    });
  });

  it('rotates keys: signs with the first, verifies with any listed', async () => {
    const clock = new ManualClock();
    const old = await createTokenCodec({ keys: [{ kid: 'old', secret: SECRET }], clock });
    const { token: oldToken } = await old.sign({ lsn: 1n, cid: CID });
    const rotated = await createTokenCodec({
      keys: [
        { kid: 'new', secret: 'another-very-long-secret-of-32-bytes-or-more' },
        { kid: 'old', secret: SECRET },
      ],
      clock,
    });
    expect((await rotated.verify(oldToken)).ok).toBe(true);
    const { token } = await rotated.sign({ lsn: 2n, cid: CID });
    expect(JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid).toBe(
      'new',
    );
    expect(await old.verify(token)).toEqual({ ok: false, reason: 'unknown-kid' });
  });

  it('supports EdDSA key sets given as JWK, and verify-only public keys', async () => {
    const clock = new ManualClock();
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    const signer = await createTokenCodec({
      keys: [
        {
          kid: 'ed1',
          alg: 'EdDSA',
          publicKey: await exportJWK(publicKey),
          privateKey: await exportJWK(privateKey),
        },
      ],
      clock,
    });
    const { token } = await signer.sign({ lsn: 9n, cid: CID });
    const verifier = await createTokenCodec({
      keys: [{ kid: 'ed1', alg: 'EdDSA', publicKey }],
      clock,
    });
    expect(await verifier.verify(token, { cid: CID })).toMatchObject({ ok: true, lsn: 9n });
    await expect(verifier.sign({ lsn: 1n, cid: CID })).rejects.toThrow(ConfigError);
  });

  it('caches verified tokens in a bounded LRU', async () => {
    const clock = new ManualClock();
    const signer = await createTokenCodec({ secret: SECRET, clock });
    const tokens = await Promise.all(
      [1n, 2n, 3n].map(async (lsn) => (await signer.sign({ lsn, cid: CID })).token),
    );
    const codec = await createTokenCodec({ secret: SECRET, clock, cacheSize: 2 });
    for (const token of tokens) await codec.verify(token);
    expect(codec.verifyCached(tokens[0] as string)).toBeUndefined();
    expect(codec.verifyCached(tokens[2] as string)).toMatchObject({ lsn: 3n });
  });

  it('a token signed with a forged key is not cached as valid', async () => {
    const { codec, clock } = await hsCodec();
    const forged = forge(
      { alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt' },
      claims(clock),
      hmac('y'.repeat(40)),
    );
    await codec.verify(forged);
    expect(codec.verifyCached(forged)).toBeUndefined();
  });

  it('validates its configuration', async () => {
    await expect(createTokenCodec({ secret: 'short' })).rejects.toThrow(/at least 32 bytes/);
    await expect(createTokenCodec({})).rejects.toThrow(ConfigError);
    await expect(
      createTokenCodec({ secret: SECRET, algorithms: ['RS256' as never] }),
    ).rejects.toThrow(/unsupported/);
    await expect(createTokenCodec({ secret: SECRET, algorithms: ['EdDSA'] })).rejects.toThrow(
      /allow-list/,
    );
    await expect(createTokenCodec({ secret: SECRET, ttl: '1d' as never })).rejects.toThrow(/`ttl`/);
    await expect(createTokenCodec({ secret: SECRET, tll: '1m' } as never)).rejects.toThrow(
      /Did you mean "ttl"/,
    );
    await expect(
      createTokenCodec({
        keys: [
          { kid: 'a', secret: SECRET },
          { kid: 'a', secret: SECRET },
        ],
      }),
    ).rejects.toThrow(/twice/);
  });

  it('rejects tokens with critical header extensions it does not understand', async () => {
    const { codec, clock } = await hsCodec();
    const token = forge(
      { alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt', crit: ['x'], x: 1 },
      claims(clock),
      hmac(SECRET),
    );
    expect(await codec.verify(token)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses an unencoded payload (b64) and reports an unknown kid before a crit header', async () => {
    const { codec, clock } = await hsCodec();
    const b64False = forge(
      { alg: 'HS256', kid: 'k1', typ: 'freshgate+jwt', b64: false, crit: ['b64'] },
      claims(clock),
      hmac(SECRET),
    );
    expect(codec.verifyNow(b64False)).toEqual({ ok: false, reason: 'malformed' });
    const unknownKid = forge(
      { alg: 'HS256', kid: 'k9', typ: 'freshgate+jwt', crit: ['x'], x: 1 },
      claims(clock),
      hmac(SECRET),
    );
    expect(codec.verifyNow(unknownKid)).toEqual({ ok: false, reason: 'unknown-kid' });
  });

  it('verifies an HS256 token at once (verifyNow), and caches it', async () => {
    const clock = new ManualClock();
    const signer = await createTokenCodec({ secret: SECRET, clock });
    const codec = await createTokenCodec({ secret: SECRET, clock });
    const { token } = await signer.sign({ lsn: 7n, cid: CID });
    expect(codec.verifyCached(token)).toBeUndefined();
    const now = codec.verifyNow(token, { cid: CID });
    expect(now).toMatchObject({ ok: true, lsn: 7n, cid: CID });
    expect(codec.verifyCached(token)).toBe(now);
    expect(codec.verifyNow(token, { cid: 'other/1' })).toEqual({
      ok: false,
      reason: 'foreign-cluster',
    });
    const [h, p] = token.split('.') as [string, string];
    const tampered = `${h}.${p}.${hmac('z'.repeat(40))(`${h}.${p}`)}`;
    expect(codec.verifyNow(tampered)).toEqual({ ok: false, reason: 'signature' });
    expect(codec.verifyCached(tampered)).toBeUndefined();
    const stale = forge(
      { alg: 'HS256', kid: tokenKid(token), typ: 'freshgate+jwt' },
      claims(clock, { exp: Math.floor(clock.now() / 1000) - 1, iat: 1 }),
      hmac(SECRET),
    );
    expect(codec.verifyNow(stale)).toEqual({ ok: false, reason: 'expired' });
    expect(codec.verifyNow('not a token')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('leaves an EdDSA token to verify(), and shares one verification among concurrent calls', async () => {
    const clock = new ManualClock();
    const { publicKey, privateKey } = await generateKeyPair('EdDSA');
    const codec = await createTokenCodec({
      keys: [{ kid: 'ed1', alg: 'EdDSA', publicKey, privateKey }],
      clock,
    });
    const signer = await createTokenCodec({
      keys: [{ kid: 'ed1', alg: 'EdDSA', publicKey, privateKey }],
      clock,
    });
    const { token } = await signer.sign({ lsn: 3n, cid: CID });
    expect(codec.verifyNow(token)).toBeUndefined();
    const [a, b] = await Promise.all([codec.verify(token), codec.verify(token, { cid: CID })]);
    expect(a).toMatchObject({ ok: true, lsn: 3n });
    // One verification: both callers hold the one result it cached.
    expect(b).toBe(a);
    expect(codec.verifyNow(token)).toBe(a);
    expect(await codec.verify(token, { cid: 'other/1' })).toEqual({
      ok: false,
      reason: 'foreign-cluster',
    });
  });
});

function tokenKid(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid;
}
