import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defineContract } from './contract.js';
import { createEngine, type EngineOptions } from './engine.js';
import { ConfigError, FreshnessUnavailableError, TokenRejectedError } from './errors.js';
import { ManualClock } from './manual-clock.js';
import { memoryPinStore, type PinStore } from './pin-store.js';
import { toProblem } from './problem.js';
import { CLAIM_CLOCK_SKEW_MS, RequestFreshness } from './request-freshness.js';
import { Topology } from './topology.js';

const SECRET = 'engine-test-secret-that-is-long-enough!!';
const CID = 'c/1';

async function setup(options: Partial<EngineOptions> = {}) {
  const clock = new ManualClock(1_000_000);
  const topology = new Topology({ replicas: [{ name: 'r1' }, { name: 'r2' }], clock });
  topology.updatePrimary({ currentLsn: 1000n, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r1', { replayLsn: 900n, lagMs: 10, clusterId: CID, health: 'healthy' });
  topology.updateReplica('r2', { replayLsn: 500n, lagMs: 50, clusterId: CID, health: 'healthy' });
  clock.advance(100);
  const store = memoryPinStore({ clock });
  const engine = await createEngine({
    topology,
    secret: SECRET,
    clock,
    pinStore: store,
    ...options,
  });
  const headers: [string, string][] = [];
  const sink = { setHeader: (name: string, value: string) => headers.push([name, value]) };
  return { clock, topology, store, engine, headers, sink };
}

describe('createEngine: configuration', () => {
  it('fails at start-up naming the option, with did-you-mean', async () => {
    const topology = new Topology();
    await expect(
      createEngine({ topology, secret: SECRET, pinMod: 'lsn' } as never),
    ).rejects.toThrow(/`pinMod`.*Did you mean "pinMode"/);
    await expect(
      createEngine({ topology, secret: SECRET, selection: 'round-robbin' as never }),
    ).rejects.toThrow(/Did you mean "round-robin"/);
    await expect(
      createEngine({ topology, secret: SECRET, defaultContract: 'strogn' as never }),
    ).rejects.toThrow(/`defaultContract`.*Did you mean "strong"/);
    await expect(
      createEngine({ topology, secret: SECRET, pinTtl: '5 sec' as never }),
    ).rejects.toThrow(/`pinTtl`/);
    await expect(
      createEngine({ topology, secret: SECRET, budget: { rat: 5 } as never }),
    ).rejects.toThrow(/`budget.rat`.*Did you mean "rate"/);
    await expect(createEngine({ secret: SECRET } as never)).rejects.toThrow(ConfigError);
    await expect(createEngine({ topology, secret: 'short' })).rejects.toThrow(/32 bytes/);
    await expect(createEngine({ topology, secret: SECRET, pinStore: {} as never })).rejects.toThrow(
      /`pinStore`/,
    );
    await expect(
      createEngine({ topology, secret: SECRET, cookie: { name: 'a b' } }),
    ).rejects.toThrow(/`cookie`/);
  });

  it('names every token option as written (token.maxLength, not maxLength) and rejects the old flat names', async () => {
    const topology = new Topology();
    const option = (options: Partial<EngineOptions>) =>
      createEngine({ topology, secret: SECRET, ...options } as EngineOptions).then(
        () => null,
        (e: ConfigError) => e.option,
      );
    expect(await option({ token: { maxLength: 10 } })).toBe('token.maxLength');
    expect(await option({ token: { ttl: '10ms' } })).toBe('token.ttl');
    expect(await option({ token: { cacheSize: -1 } })).toBe('token.cacheSize');
    expect(await option({ token: { maxLenght: 100 } as never })).toBe('token.maxLenght');
    expect(await option({ tokenMaxLength: 100 } as never)).toBe('tokenMaxLength');
    expect(await option({ token: { maxLength: 2048, ttl: '1m' } })).toBeNull();
  });

  it('fails at start-up, not at the first write, when no key of the key set can sign', async () => {
    const { generateKeyPair } = await import('jose');
    const { publicKey } = await generateKeyPair('EdDSA');
    const err = await createEngine({
      topology: new Topology(),
      keys: [{ kid: 'k1', alg: 'EdDSA', publicKey }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).option).toBe('keys');
    expect((err as ConfigError).message).toMatch(/privateKey/);
  });
});

describe('engine: writes and read-your-writes', () => {
  it('a write resolves after the token is set and the pin extended; the next read honours it', async () => {
    const { engine, headers, sink, store, clock } = await setup({ cookie: true });
    const write = await engine.begin({
      contract: 'read-your-writes',
      sessionKey: 'sess-1',
      sink,
      secure: true,
    });
    await write.wrote(950n);
    const token = write.token as string;
    expect(headers).toEqual([
      ['X-Freshness-Route', 'primary'],
      ['X-Freshness-Token', token],
      [
        'Set-Cookie',
        `__Host-fg_fresh=${token}; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure`,
      ],
    ]);
    expect(await store.get(engine.hashSessionKey('sess-1'))).toMatchObject({
      lsn: 950n,
      node: null,
      ttlMs: 5000,
    });
    expect(write.route()).toMatchObject({ kind: 'primary', reason: 'after-write' });

    // Next request with the token: no replica has 950 yet → check the most advanced.
    const read = await engine.begin({ contract: 'read-your-writes', token });
    expect(read.requiredLsn()).toBe(950n);
    const first = read.route();
    expect(first).toMatchObject({ kind: 'check', lsn: 950n });
    engine.topology.observeReplayLsn('r1', 960n);
    const second = read.route();
    expect(second).toMatchObject({ kind: 'replica', reason: 'replica-caught-up' });

    // Same session, cookie only, no token header: the pin alone is enough.
    const byPin = await engine.begin({ contract: 'read-your-writes', sessionKey: 'sess-1' });
    expect(byPin.requiredLsn()).toBe(950n);
    // The cookie carries the token too.
    const byCookie = await engine.begin({
      contract: 'read-your-writes',
      cookie: `a=1; fg_fresh=${token}`,
    });
    expect(byCookie.requiredLsn()).toBe(950n);
    clock.advance(5000);
    const expired = await engine.begin({ contract: 'read-your-writes', sessionKey: 'sess-1' });
    expect(expired.requiredLsn()).toBeNull();
  });

  it('bindSession: a write made before the key was known is pinned under it, later writes too, and the session reads by its pin', async () => {
    const { engine, store } = await setup();
    // Sign-up: the request starts with no session key, writes, then learns the user id.
    const signup = await engine.begin({ contract: 'read-your-writes' });
    await signup.wrote(950n);
    expect(signup.commitLsn).toBe('0/3B6');
    await signup.bindSession(42);
    expect(await store.get(engine.hashSessionKey('42'))).toMatchObject({ lsn: 950n });
    await signup.wrote(970n);
    expect(signup.commitLsn).toBe('0/3CA');
    expect(await store.get(engine.hashSessionKey('42'))).toMatchObject({ lsn: 970n });

    // The next request knows only the key (no token, no cookie): the pin makes it fresh.
    const next = await engine.begin({ contract: 'read-your-writes', sessionKey: '42' });
    expect(next.requiredLsn()).toBe(970n);
  });

  it('bindSession: a login reads the pin of the session it binds, so earlier writes of that user count', async () => {
    const { engine, store } = await setup();
    await store.extend(engine.hashSessionKey('user-7'), { lsn: 980n, node: null, ttlMs: 5_000 });
    const login = await engine.begin({ contract: 'read-your-writes' });
    expect(login.requiredLsn()).toBeNull();
    await login.bindSession('user-7');
    expect(login.requiredLsn()).toBe(980n);
    expect(login.route()).toMatchObject({ kind: 'check', lsn: 980n });
    expect(login.commitLsn).toBeNull();
    await expect(login.bindSession('')).rejects.toThrow(TypeError);
  });

  it('bindSession with a failing pin store is counted, never thrown, and reads take a barrier', async () => {
    const failing: PinStore = {
      get: () => Promise.reject(new Error('down')),
      extend: () => Promise.reject(new Error('down')),
    };
    const { engine } = await setup({ pinStore: failing });
    const login = await engine.begin({ contract: 'read-your-writes' });
    await login.bindSession('user-8');
    expect(login.route()).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
  });

  it('reads() counts routed reads per contract, route and reason', async () => {
    const { engine } = await setup();
    for (let i = 0; i < 2; i++) (await engine.begin({ contract: 'strong' })).route();
    (await engine.begin({ contract: 'eventual' })).route();
    const rows = engine.reads();
    expect(rows).toContainEqual({
      contract: 'strong',
      route: 'primary',
      reason: 'strong',
      reads: 2,
    });
    expect(rows.find((r) => r.contract === 'eventual')).toMatchObject({
      route: 'replica:r1',
      reads: 1,
    });
  });

  it('a request that runs no statement reads no clock; its routing starts at its first statement, the barrier asking for a position seen since', async () => {
    let reads = 0;
    const manual = new ManualClock(1_000_000);
    const clock = {
      now: () => {
        reads++;
        return manual.now();
      },
    };
    const { engine } = await setup({ clock });
    reads = 0;
    const idle = engine.begin({ readAfterWrite: 'true' });
    expect(idle).toBeInstanceOf(RequestFreshness);
    expect(reads).toBe(0);
    const hinted = engine.begin({
      contract: 'eventual',
      readAfterWrite: 'true',
    }) as RequestFreshness;
    manual.advance(500);
    const decision = hinted.route();
    expect(decision).toMatchObject({ kind: 'barrier', reason: 'hint-no-lsn' });
    // Later than the request's arrival: it can only ask for a newer position.
    expect((decision as { since: number }).since).toBe(1_000_500);
    expect(reads).toBe(1);
  });

  it('X-Read-After-Write with nothing known reads at a barrier (a replica past the fresh primary position); garbage is ignored', async () => {
    const { engine } = await setup();
    const hinted = await engine.begin({ contract: 'eventual', readAfterWrite: 'true' });
    expect(hinted.route()).toMatchObject({ kind: 'barrier', reason: 'hint-no-lsn' });
    hinted.observedBarrier(900n, 'query');
    expect(hinted.requiredLsn()).toBe(900n);
    expect(hinted.route()).toMatchObject({
      kind: 'replica',
      route: 'replica:r1',
      reason: 'barrier-caught-up',
    });
    const ignored = await engine.begin({ contract: 'eventual', readAfterWrite: 'please' });
    expect(ignored.route()).toMatchObject({ kind: 'replica', reason: 'replica-healthy' });
  });

  it('a token beyond the primary position routes to the primary without waiting', async () => {
    const { engine, clock, topology } = await setup({
      defaultContract: { contract: 'read-your-writes', fallback: [{ wait: 1000 }, 'primary'] },
    });
    const { token } = await engine.codec.sign({ lsn: 5000n, cid: CID });
    // The monitor samples the primary after the token was issued: the token is ahead of a
    // position the primary had reached after it.
    clock.advance(2_000);
    topology.updatePrimary({ currentLsn: 1000n });
    const freshness = await engine.begin({ token });
    // Ahead of this instance's sample: look at the primary first.
    expect(freshness.route()).toMatchObject({ kind: 'barrier', reason: 'future-lsn' });
    freshness.observedBarrier(1000n, 'query');
    const decision = freshness.route();
    expect(decision).toMatchObject({ kind: 'primary', reason: 'future-lsn' });
  });

  it('a token issued after the last sample and ahead of it (another app instance wrote since) routes by the token, without a look at the primary', async () => {
    const { engine, clock } = await setup();
    clock.advance(1_000);
    const { token } = await engine.codec.sign({ lsn: 1100n, cid: CID });
    const freshness = await engine.begin({ token });
    expect(freshness.requiredLsn()).toBe(1100n);
    expect(freshness.route()).toMatchObject({ kind: 'check', lsn: 1100n });
  });

  it('a token ahead of a sample taken after it, reached by the primary since, routes by the token after a look at the primary', async () => {
    const { engine, clock, topology } = await setup();
    const { token } = await engine.codec.sign({ lsn: 1100n, cid: CID });
    clock.advance(2_000);
    topology.updatePrimary({ currentLsn: 1000n });
    const freshness = await engine.begin({ token });
    expect(freshness.route()).toMatchObject({ kind: 'barrier', reason: 'future-lsn' });
    freshness.observedBarrier(1200n, 'shared');
    // The token stays the requirement: the barrier was only a look at the primary.
    expect(freshness.requiredLsn()).toBe(1100n);
    expect(freshness.route()).toMatchObject({ kind: 'check', lsn: 1100n });
  });

  it('ignores invalid and foreign-cluster tokens, or rejects them in strict mode', async () => {
    const { engine } = await setup();
    const other = await createEngine({
      topology: new Topology(),
      secret: 'another-secret-that-is-long-enough-too!',
    });
    const { token: wrongKey } = await other.codec.sign({ lsn: 1n, cid: CID });
    const { token: foreign } = await engine.codec.sign({ lsn: 1n, cid: 'c/2' });
    const a = await engine.begin({ token: wrongKey });
    expect(a.tokenRejection).toBe('unknown-kid');
    expect(a.requiredLsn()).toBeNull();
    expect((await engine.begin({ token: foreign })).tokenRejection).toBe('foreign-cluster');

    const strict = await setup({ strict: true });
    const err = await (async () => strict.engine.begin({ token: 'garbage' }))().catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TokenRejectedError);
    expect(toProblem(err)).toMatchObject({
      status: 400,
      headers: { 'Content-Type': 'application/problem+json' },
      body: { status: 400, title: 'Freshness token rejected', reason: 'malformed' },
    });
  });

  it('uses a valid token whatever session it was issued to: it can only make reads stricter', async () => {
    const { engine } = await setup();
    const { token } = await engine.codec.sign({
      lsn: 950n,
      cid: CID,
      sid: engine.hashSessionKey('anonymous-visitor'),
    });
    // The session key changed at login: the client's own token must still count.
    for (const contract of ['read-your-writes', 'monotonic', 'causal'] as const) {
      const freshness = await engine.begin({ contract, token, sessionKey: 'user-42' });
      expect(freshness.tokenRejection).toBeNull();
      expect(freshness.requiredLsn()).toBe(950n);
    }
    // A session-less caller (another service) propagating the token is trusted too.
    expect((await engine.begin({ contract: 'read-your-writes', token })).requiredLsn()).toBe(950n);
  });

  it('uses the newer of a header token and a cookie token', async () => {
    const { engine } = await setup({ cookie: true });
    const older = (await engine.codec.sign({ lsn: 500n, cid: CID })).token;
    const newer = (await engine.codec.sign({ lsn: 900n, cid: CID })).token;
    const cookieOf = (t: string) => `theme=dark; fg_fresh=${t}`;
    expect((await engine.begin({ token: older, cookie: cookieOf(newer) })).requiredLsn()).toBe(
      900n,
    );
    expect((await engine.begin({ token: newer, cookie: cookieOf(older) })).requiredLsn()).toBe(
      900n,
    );
    const bad = await engine.begin({ token: 'garbage', cookie: cookieOf(older) });
    expect(bad.requiredLsn()).toBe(500n);
    expect(bad.tokenRejection).toBe('malformed');
  });
});

describe('engine: nobody can quietly loosen another client', () => {
  const cookieOf = (...tokens: string[]) => tokens.map((t) => `fg_fresh=${t}`).join('; ');

  it('an older valid fg_fresh cookie sent before the newest one does not lower the required LSN', async () => {
    const { engine } = await setup({ cookie: true });
    const older = (await engine.codec.sign({ lsn: 500n, cid: CID })).token;
    const newer = (await engine.codec.sign({ lsn: 900n, cid: CID })).token;
    // Browsers send the cookie with the longer Path first: a planted one comes before ours.
    for (const cookie of [cookieOf(older, newer), `theme=dark; ${cookieOf(newer, older)}`]) {
      const f = await engine.begin({ contract: 'read-your-writes', cookie });
      expect(f.requiredLsn()).toBe(900n);
      expect(f.forwardToken()).toBe(newer);
    }
    // Not yet in the verified-token cache: the same through the asynchronous path.
    const fresh = await setup({ cookie: true, token: { cacheSize: 0 } });
    const o = (await fresh.engine.codec.sign({ lsn: 500n, cid: CID })).token;
    const n = (await fresh.engine.codec.sign({ lsn: 900n, cid: CID })).token;
    expect((await fresh.engine.begin({ cookie: cookieOf(o, 'garbage', n) })).requiredLsn()).toBe(
      900n,
    );
  });

  it('more fg_fresh cookies than a browser sends route as an unknown LSN (a barrier), never looser', async () => {
    const { engine } = await setup({ cookie: true });
    const older = (await engine.codec.sign({ lsn: 500n, cid: CID })).token;
    const newer = (await engine.codec.sign({ lsn: 900n, cid: CID })).token;
    const cookie = cookieOf(...Array.from({ length: 20 }, () => older), newer);
    const f = await engine.begin({ contract: 'read-your-writes', cookie });
    // A barrier requires the primary's position after the request arrived: past every token.
    expect(f.route()).toMatchObject({ kind: 'barrier' });
  });

  it('on https the cookie is __Host- prefixed (a sibling subdomain cannot set it); both names are read', async () => {
    const { engine, headers, sink } = await setup({ cookie: true });
    const f = await engine.begin({ contract: 'read-your-writes', sink, secure: true });
    await f.wrote(950n);
    expect(headers.find(([n]) => n === 'Set-Cookie')?.[1]).toMatch(
      /^__Host-fg_fresh=[^;]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax; Secure$/,
    );
    const older = (await engine.codec.sign({ lsn: 500n, cid: CID })).token;
    const cookie = `fg_fresh=${older}; __Host-fg_fresh=${f.token}`;
    expect((await engine.begin({ cookie, secure: true })).requiredLsn()).toBe(950n);
    // A configured name or domain is used as given.
    const named = await setup({ cookie: { name: 'fresh' } });
    const g = await named.engine.begin({ sink: named.sink, secure: true });
    await g.wrote(950n);
    expect(named.headers.find(([n]) => n === 'Set-Cookie')?.[1]).toMatch(/^fresh=/);
  });

  it('a function for `secure` is asked only when a cookie is written, and its answer is used', async () => {
    const { engine, headers, sink } = await setup({ cookie: true });
    let asked = 0;
    const secure = () => {
      asked++;
      return true;
    };
    const read = await engine.begin({ contract: 'read-your-writes', sink, secure });
    read.route();
    expect(asked).toBe(0);
    await read.wrote(950n);
    expect(asked).toBe(1);
    expect(headers.find(([n]) => n === 'Set-Cookie')?.[1]).toMatch(/^__Host-fg_fresh=.*; Secure$/);
    // A rejected cookie is cleared with the same attributes: a 400 in strict mode, or not.
    for (const strict of [false, true]) {
      const other = await setup({ cookie: true, strict });
      asked = 0;
      const started = (async () =>
        other.engine.begin({ cookie: cookieOf('garbage'), sink: other.sink, secure }))();
      await started.catch(() => {});
      expect(asked).toBe(1);
      expect(other.headers).toEqual([
        ['Set-Cookie', 'fg_fresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure'],
      ]);
    }
  });

  it('without `secure`, asks the sink (an adapter sink holds the request), only when a cookie is written', async () => {
    const { engine, headers } = await setup({ cookie: true });
    let asked = 0;
    const sink = {
      setHeader: (name: string, value: string) => headers.push([name, value]),
      secure: () => {
        asked++;
        return true;
      },
    };
    const read = await engine.begin({ contract: 'read-your-writes', sink });
    read.route();
    expect(asked).toBe(0);
    await read.wrote(950n);
    expect(asked).toBe(1);
    expect(headers.find(([n]) => n === 'Set-Cookie')?.[1]).toMatch(/^__Host-fg_fresh=.*; Secure$/);
    // A sink that cannot tell, and no `secure`: no Secure attribute.
    const plain = await setup({ cookie: true });
    await (await plain.engine.begin({ sink: plain.sink })).wrote(950n);
    expect(plain.headers.find(([n]) => n === 'Set-Cookie')?.[1]).toMatch(
      /^fg_fresh=.*; SameSite=Lax$/,
    );
  });

  it('a rejected cookie is cleared in the response; expired, foreign-cluster and unknown-kid tokens never make strict mode answer 400', async () => {
    const strict = await setup({ strict: true, cookie: true });
    const other = await createEngine({
      topology: new Topology(),
      secret: 'another-secret-that-is-long-enough-too!',
    });
    const { token: unknownKid } = await other.codec.sign({ lsn: 1n, cid: CID });
    const { token: expired } = await strict.engine.codec.sign({ lsn: 1n, cid: CID });
    strict.clock.advance(11 * 60_000);
    const { token: foreign } = await strict.engine.codec.sign({ lsn: 1n, cid: 'c/2' });
    for (const [token, reason] of [
      [unknownKid, 'unknown-kid'],
      [foreign, 'foreign-cluster'],
      [expired, 'expired'],
    ] as const) {
      strict.headers.length = 0;
      const f = await strict.engine.begin({ cookie: cookieOf(token), sink: strict.sink });
      expect(f.tokenRejection).toBe(reason);
      expect(strict.headers).toEqual([
        ['Set-Cookie', 'fg_fresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax'],
      ]);
      // From the header too: the client did nothing wrong.
      expect((await strict.engine.begin({ token })).tokenRejection).toBe(reason);
    }
    // A tampered cookie is still a 400 in strict mode, and the 400 clears it.
    strict.headers.length = 0;
    const err = await (async () =>
      strict.engine.begin({
        cookie: cookieOf('garbage'),
        sink: strict.sink,
        secure: true,
      }))().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRejectedError);
    expect(strict.headers).toEqual([
      ['Set-Cookie', 'fg_fresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure'],
    ]);
  });

  it("a rejected cookie next to a valid one of the same name is not cleared: a planted cookie cannot delete the client's own", async () => {
    const { engine, headers, sink } = await setup({ cookie: true });
    const valid = (await engine.codec.sign({ lsn: 900n, cid: CID })).token;
    const f = await engine.begin({ cookie: cookieOf('garbage', valid), sink });
    expect(f.tokenRejection).toBe('malformed');
    expect(f.requiredLsn()).toBe(900n);
    expect(headers).toEqual([]);
    // Strict mode still refuses the tampered one, and still leaves the valid cookie alone.
    const strict = await setup({ cookie: true, strict: true });
    const token = (await strict.engine.codec.sign({ lsn: 900n, cid: CID })).token;
    await expect(
      (async () =>
        strict.engine.begin({ cookie: cookieOf('garbage', token), sink: strict.sink }))(),
    ).rejects.toBeInstanceOf(TokenRejectedError);
    expect(strict.headers).toEqual([]);
  });

  it('sid and pin keys are keyed with the server secret: a guessed session key cannot be confirmed', async () => {
    const { engine, sink, store } = await setup({ cookie: true });
    const f = await engine.begin({ contract: 'read-your-writes', sessionKey: 'ada', sink });
    await f.wrote(950n);
    const payload = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as {
        sid?: string;
      };
    const sid = payload(f.token as string).sid as string;
    expect(sid).toHaveLength(22);
    // The unkeyed hash a dictionary attack would compute.
    const unkeyed = createHash('sha256')
      .update('freshgate:session:')
      .update('ada')
      .digest('base64url')
      .slice(0, 22);
    expect(sid).not.toBe(unkeyed);
    expect(await store.get(unkeyed)).toBeUndefined();
    expect(await store.get(sid)).toMatchObject({ lsn: 950n });
    // Another secret, another hash: the same for every process sharing the secret.
    const other = await setup({ secret: 'a-different-secret-that-is-long-enough' });
    expect(other.engine.hashSessionKey('ada')).not.toBe(sid);
    expect((await setup()).engine.hashSessionKey('ada')).toBe(sid);
    // A custom hash still wins.
    const custom = await setup({ hashSessionKey: (k) => `h-${k}` });
    expect(custom.engine.hashSessionKey('ada')).toBe('h-ada');
  });

  it('keys session hashes from an asymmetric signing key too; a custom hashSessionKey wins', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const topology = new Topology();
    const key = { kid: 'ed1', alg: 'EdDSA' as const, publicKey, privateKey };
    const keys = [key];
    const a = await createEngine({ topology, keys, pinStore: memoryPinStore() });
    const b = await createEngine({
      topology,
      keys: [{ ...key, privateKey: privateKey.export({ format: 'jwk' }) }],
    });
    expect(a.hashSessionKey('ada')).toBe(b.hashSessionKey('ada'));
    const verifyOnly = [{ kid: 'ed1', alg: 'EdDSA' as const, publicKey }];
    // A key set that cannot sign fails at start-up, before any session hash is needed.
    await expect(
      createEngine({ topology, keys: verifyOnly, pinStore: memoryPinStore() }),
    ).rejects.toThrow(/`keys`/);
    const custom = await createEngine({
      topology,
      keys,
      pinStore: memoryPinStore(),
      hashSessionKey: (k) => `h-${k}`,
    });
    expect(custom.hashSessionKey('ada')).toBe('h-ada');
  });

  it('before the monitor has identified the cluster, no token is trusted and a request carrying one reads at a barrier', async () => {
    const clock = new ManualClock(1_000_000);
    const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
    topology.updatePrimary({ currentLsn: 1000n, health: 'healthy' });
    topology.updateReplica('r1', { replayLsn: 900n, lagMs: 10, health: 'healthy' });
    const engine = await createEngine({ topology, secret: SECRET, clock });
    const { token } = await engine.codec.sign({ lsn: 10n, cid: 'some-other-cluster' });
    const f = await engine.begin({ contract: 'read-your-writes', token });
    expect(f.forwardToken()).toBeNull();
    expect(f.requiredLsn()).toBeNull();
    expect(f.route()).toMatchObject({ kind: 'barrier' });
  });
});

describe('engine: begin on the hot path', () => {
  it('starts without a promise when there is nothing to wait for, with one when there is', async () => {
    const { engine } = await setup();
    expect(engine.begin({ contract: 'eventual' })).toBeInstanceOf(RequestFreshness);
    const { token } = await engine.codec.sign({ lsn: 950n, cid: CID });
    // Signed here, so already in the verified-token cache.
    const cached = engine.begin({ contract: 'read-your-writes', token });
    expect(cached).toBeInstanceOf(RequestFreshness);
    expect((cached as RequestFreshness).requiredLsn()).toBe(950n);
    const pinned = engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(pinned).toBeInstanceOf(Promise);
    expect((await pinned).requiredLsn()).toBeNull();
  });

  it('starts without a promise on an HS256 token seen for the first time, with one on a new EdDSA token', async () => {
    const { engine, clock, topology } = await setup();
    // Signed by another instance: not in this one's cache, and its HMAC is checked at once.
    const other = await createEngine({ topology, secret: SECRET, clock });
    const { token } = await other.codec.sign({ lsn: 960n, cid: CID });
    expect(engine.codec.verifyCached(token)).toBeUndefined();
    const first = engine.begin({ contract: 'read-your-writes', token });
    expect(first).toBeInstanceOf(RequestFreshness);
    expect((first as RequestFreshness).requiredLsn()).toBe(960n);

    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const keys = [{ kid: 'ed1', alg: 'EdDSA' as const, publicKey, privateKey }];
    const signer = await createEngine({ topology, keys, clock });
    const ed = await createEngine({ topology, keys, clock });
    const edToken = (await signer.codec.sign({ lsn: 970n, cid: CID })).token;
    const waiting = ed.begin({ contract: 'read-your-writes', token: edToken });
    expect(waiting).toBeInstanceOf(Promise);
    expect((await waiting).requiredLsn()).toBe(970n);
    // Verified once: the next request with it starts at once.
    expect(ed.begin({ contract: 'read-your-writes', token: edToken })).toBeInstanceOf(
      RequestFreshness,
    );
  });
});

describe('engine: request scope', () => {
  it('keeps one replica per request and sets the route header once', async () => {
    const { engine, headers, sink, topology } = await setup({ selection: 'round-robin' });
    const freshness = await engine.begin({ contract: 'eventual', sink });
    const names = [freshness.route(), freshness.route(), freshness.route()].map(
      (d) => d.kind === 'replica' && d.node.name,
    );
    expect(new Set(names).size).toBe(1);
    expect(headers).toEqual([['X-Freshness-Route', `replica:${names[0]}`]]);
    const first = freshness.route();
    await freshness.observedRead(first);
    topology.updateReplica(names[0] as string, { health: 'down' });
    // What the request read is bounded by the primary's position observed from now on.
    expect(freshness.route()).toMatchObject({ kind: 'barrier', reason: 'request-replica-lost' });
    freshness.observedBarrier(1000n, 'query');
    const other = names[0] === 'r1' ? 'r2' : 'r1';
    expect(freshness.route()).toMatchObject({ kind: 'check', node: { name: other } });
    expect(freshness.route()).toMatchObject({
      kind: 'primary',
      reason: 'request-replica-lost',
    });
    expect(freshness.servedBy).toBe('primary');
  });

  it('a replica that died before serving the request is simply replaced', async () => {
    const { engine, topology } = await setup();
    const freshness = await engine.begin({ contract: 'eventual' });
    const first = freshness.route();
    topology.updateReplica((first as { node: { name: string } }).node.name, { health: 'down' });
    expect(freshness.route()).toMatchObject({ kind: 'replica', reason: 'replica-healthy' });
  });

  it('a per-query strong contract and transactions go to the primary', async () => {
    const { engine } = await setup();
    const freshness = await engine.begin({ contract: 'eventual' });
    expect(freshness.route({ contract: defineContract('strong') }).reason).toBe('strong');
    expect(freshness.route({ inTransaction: true }).reason).toBe('in-transaction');
    expect(freshness.route({ locking: true }).reason).toBe('locking-read');
  });

  it('bounded reads report the lag header: the lag as measured plus the time since', async () => {
    const { engine, headers, sink } = await setup();
    const freshness = await engine.begin({ contract: { maxLag: '1s' }, sink });
    freshness.route();
    // r1 was measured 10 ms behind, 100 ms ago.
    expect(headers).toContainEqual(['X-Freshness-Lag-Ms', '110']);
  });

  it('wait → resume: after the wait times out the chain continues', async () => {
    const { engine, clock } = await setup({
      defaultContract: { contract: 'read-your-writes', fallback: [{ wait: '300ms' }, 'error'] },
    });
    const { token } = await engine.codec.sign({ lsn: 990n, cid: CID });
    const freshness = await engine.begin({ token });
    expect(freshness.route().kind).toBe('check');
    const wait = freshness.route();
    expect(wait).toMatchObject({ kind: 'wait', lsn: 990n, timeoutMs: 300 });
    clock.advance(300);
    const after = freshness.route();
    expect(after).toMatchObject({ kind: 'error', reason: 'no-replica-caught-up' });
    if (after.kind !== 'error') throw new Error('unreachable');
    const problem = toProblem(new FreshnessUnavailableError(after.reason, after.retryAfterSeconds));
    expect(problem).toMatchObject({
      status: 503,
      headers: { 'Retry-After': '1' },
      body: { status: 503 },
    });
    expect(toProblem(new Error('other'))).toBeNull();
  });

  it('an empty budget turns a primary fallback into 503', async () => {
    const { engine } = await setup({ budget: { rate: 1, burst: 1 } });
    const { token } = await engine.codec.sign({ lsn: 999n, cid: CID });
    const kinds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await engine.begin({ token });
      let d = f.route();
      if (d.kind === 'check') d = f.route();
      kinds.push(d.kind);
    }
    expect(kinds).toEqual(['primary', 'error', 'error']);
  });
});

describe('engine: pin store failures', () => {
  const failing: PinStore = {
    get: () => Promise.reject(new Error('ECONNREFUSED')),
    extend: () => Promise.reject(new Error('ECONNREFUSED')),
  };

  it('a failed store: a barrier for a session without a token, the token for one with it; writes still succeed', async () => {
    const { engine } = await setup({ pinStore: failing });
    const f = await engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(f.route()).toMatchObject({ kind: 'barrier', reason: 'store-unavailable' });
    f.observedBarrier(950n, 'monitor');
    expect(f.route()).toMatchObject({ kind: 'check', lsn: 950n });
    expect(f.route()).toMatchObject({ kind: 'primary', reason: 'store-unavailable' });
    await expect(f.wrote(1001n)).resolves.toBeUndefined();
    expect(f.token).not.toBeNull();
    const { token } = await engine.codec.sign({ lsn: 800n, cid: CID });
    const withToken = await engine.begin({ contract: 'read-your-writes', sessionKey: 's', token });
    expect(withToken.route()).toMatchObject({ kind: 'replica', reason: 'replica-caught-up' });
    const eventual = await engine.begin({ contract: 'eventual', sessionKey: 's' });
    expect(eventual.route().kind).toBe('replica');
  });

  it("onStoreError 'primary' reads from the primary; writes still succeed", async () => {
    const { engine } = await setup({ pinStore: failing, onStoreError: 'primary' });
    const f = await engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(f.route()).toMatchObject({ kind: 'primary', reason: 'store-unavailable' });
    await expect(f.wrote(1001n)).resolves.toBeUndefined();
    expect(f.token).not.toBeNull();
    const eventual = await engine.begin({ contract: 'eventual', sessionKey: 's' });
    expect(eventual.route().kind).toBe('replica');
  });

  it("onStoreError 'token-only' carries on with the token", async () => {
    const { engine } = await setup({ pinStore: failing, onStoreError: 'token-only' });
    const f = await engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(f.route()).toMatchObject({ kind: 'replica' });
  });

  it('a hanging store times out', async () => {
    const hanging: PinStore = {
      get: () => new Promise(() => {}),
      extend: () => new Promise(() => {}),
    };
    const { engine } = await setup({ pinStore: hanging, pinStoreTimeout: 1 });
    const f = await engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(f.route().reason).toBe('store-unavailable');
  });

  it('sets no timer of its own around a store that bounds its calls as tightly', async () => {
    // A store that claims a bound and answers later: only the engine's own timer could cut it.
    const late = (bound: number): PinStore => ({
      get: () =>
        new Promise((resolve) =>
          setTimeout(() => resolve({ lsn: 7n, node: null, ttlMs: 1000 }), 30),
        ),
      extend: () => Promise.resolve(),
      timeoutMs: bound,
    });
    const trusted = await setup({ pinStore: late(5), pinStoreTimeout: 5 });
    const f = await trusted.engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(f.route().reason).not.toBe('store-unavailable');
    // A store whose bound is longer than the engine's is bounded by the engine.
    const looser = await setup({ pinStore: late(50), pinStoreTimeout: 5 });
    const g = await looser.engine.begin({ contract: 'read-your-writes', sessionKey: 's' });
    expect(g.route().reason).toBe('store-unavailable');
  });

  it('refuses a store whose timeoutMs is not a number of milliseconds', async () => {
    const store = { ...memoryPinStore(), timeoutMs: '50ms' } as unknown as PinStore;
    await expect(setup({ pinStore: store })).rejects.toThrow(/timeoutMs/);
  });

  it("pinMode 'primary' keeps a pinned session on the primary until the pin expires", async () => {
    const { engine, clock } = await setup({ pinMode: 'primary' });
    const w = await engine.begin({ sessionKey: 's' });
    await w.wrote(100n);
    expect((await engine.begin({ sessionKey: 's' })).route().reason).toBe('pinned-primary');
    clock.advance(5000);
    expect((await engine.begin({ sessionKey: 's' })).route().kind).toBe('replica');
  });

  it("pinMode 'primary': reads neither pin a session nor keep a writer's pin alive", async () => {
    const { engine, clock } = await setup({ pinMode: 'primary' });
    for (let i = 0; i < 3; i++) {
      const read = await engine.begin({ contract: 'monotonic', sessionKey: 'reader' });
      await read.observedRead(read.route(), { lsn: 1000n });
    }
    expect(
      (await engine.begin({ contract: 'monotonic', sessionKey: 'reader' })).route().reason,
    ).not.toBe('pinned-primary');
    const w = await engine.begin({ sessionKey: 'writer' });
    await w.wrote(1000n);
    for (let t = 0; t < 4; t++) {
      clock.advance(1_000);
      const read = await engine.begin({ contract: 'monotonic', sessionKey: 'writer' });
      const d = read.route();
      expect(d.reason).toBe('pinned-primary');
      await read.observedRead(d, { lsn: 1000n });
    }
    clock.advance(1_001);
    expect((await engine.begin({ sessionKey: 'writer' })).route().reason).not.toBe(
      'pinned-primary',
    );
  });

  it("pinMode 'lsn': a session-key session's sticky replica outlives pinTtl (it lives as long as a token)", async () => {
    const { engine, clock, topology } = await setup({ pinTtl: '5s', token: { ttl: '10m' } });
    const first = await engine.begin({ contract: 'monotonic', sessionKey: 'paging' });
    const d = first.route();
    expect(d).toMatchObject({ kind: 'replica', node: { name: 'r1' } });
    await first.observedRead(d);
    // r2 becomes the least lagging replica, but r2 may be behind what r1 showed.
    topology.updateReplica('r1', { lagMs: 80 });
    topology.updateReplica('r2', { lagMs: 1 });
    clock.advance(60_000);
    const later = await engine.begin({ contract: 'monotonic', sessionKey: 'paging' });
    expect(later.route()).toMatchObject({
      kind: 'replica',
      node: { name: 'r1' },
      reason: 'sticky-replica',
    });
  });
});

describe('engine: monotonic floors', () => {
  it('token-only: a replica read returns a token naming the replica, with no statement after the read; the next reads stick to it', async () => {
    const { engine, topology, headers, sink, clock } = await setup({ selection: 'least-lag' });
    const first = await engine.begin({ contract: 'monotonic', sink });
    const d = first.route();
    expect(d).toMatchObject({ kind: 'replica', node: { name: 'r1' } });
    expect(first.needsReadBound(d)).toBe(false);
    await first.observedRead(d);
    const token = first.token as string;
    expect(headers).toContainEqual(['X-Freshness-Token', token]);
    // What the read was known to reach (r1's position before it), and where it ran.
    expect(await engine.codec.verify(token)).toMatchObject({ lsn: 900n, node: 'replica:r1' });

    // r2 becomes the less lagging replica and has replayed the token's LSN, but may be behind
    // what r1 showed: the client stays on r1.
    topology.updateReplica('r2', { replayLsn: 950n, lagMs: 1 });
    clock.advance(10);
    const next = await engine.begin({ contract: 'monotonic', token, sink });
    expect(next.route()).toMatchObject({ kind: 'replica', reason: 'sticky-replica' });
    // Same replica, same LSN, same second: nothing new to tell the client.
    const before = headers.length;
    await next.observedRead(next.route());
    expect(next.token).toBeNull();
    expect(headers.length).toBe(before);
    // Read-your-writes stays there too: r2 may be behind what the monotonic read showed.
    const ryw = await engine.begin({ contract: 'read-your-writes', token });
    expect(ryw.route()).toMatchObject({ kind: 'replica', node: { name: 'r1' } });
    // Eventual does not care where the client read.
    const eventual = await engine.begin({ contract: 'eventual', token });
    expect(eventual.route()).toMatchObject({ kind: 'replica', node: { name: 'r2' } });
  });

  it('token-only: a new second reissues the claim, so that it covers the later reads', async () => {
    const { engine, clock } = await setup();
    const first = await engine.begin({ contract: 'monotonic' });
    await first.observedRead(first.route());
    const token = first.token as string;
    const iat = ((await engine.codec.verify(token)) as { iat: number }).iat;
    clock.advance(1_000);
    const next = await engine.begin({ contract: 'monotonic', token });
    await next.observedRead(next.route());
    expect(next.token).not.toBeNull();
    expect(await engine.codec.verify(next.token)).toMatchObject({
      node: 'replica:r1',
      iat: iat + 1,
    });
  });

  it('token-only: leaving the named replica takes a primary position observed after the token was issued', async () => {
    const { engine, topology, clock } = await setup();
    const first = await engine.begin({ contract: 'monotonic' });
    await first.observedRead(first.route());
    const token = first.token as string;
    const { iat } = (await engine.codec.verify(token)) as { iat: number };
    topology.updateReplica('r1', { health: 'down' });
    topology.updateReplica('r2', { replayLsn: 960n, lagMs: 1 });
    clock.advance(10);
    const next = await engine.begin({ contract: 'monotonic', token });
    const d = next.route();
    // Every position sampled before the end of the token's second (and the clock skew
    // allowed between instances) may be behind what the client read on r1.
    expect(d).toMatchObject({
      kind: 'barrier',
      reason: 'sticky-unavailable',
      since: (iat + 1) * 1000 + CLAIM_CLOCK_SKEW_MS,
    });
    next.observedBarrier(950n, 'query');
    expect(next.requiredLsn()).toBe(950n);
    expect(next.route()).toMatchObject({ kind: 'replica', node: { name: 'r2' } });
    // Read-your-writes alone is not held to it by a later request.
    const ryw = await engine.begin({ contract: 'read-your-writes', token });
    expect(ryw.requiredLsn()).toBe(900n);
  });

  it('token-only: tokens naming different replicas need a barrier, until the monitor has sampled the primary after the older one', async () => {
    const { engine, topology, clock } = await setup({ cookie: true });
    const onR1 = await engine.codec.sign({ lsn: 900n, cid: CID, node: 'replica:r1' });
    clock.advance(5_000);
    const onR2 = await engine.codec.sign({ lsn: 500n, cid: CID, node: 'replica:r2' });
    // The client holds both (two tabs): r2 may be behind what it read on r1, and r1 behind
    // what it read on r2.
    const begin = () =>
      engine.begin({ contract: 'monotonic', token: onR2.token, cookie: `fg_fresh=${onR1.token}` });
    const both = await begin();
    expect(both.route()).toMatchObject({
      kind: 'barrier',
      reason: 'sticky-unavailable',
      since: (onR2.iat + 1) * 1000 + CLAIM_CLOCK_SKEW_MS,
    });
    // A monitor sample sent after the older token's second (and the skew allowance) bounds
    // what was read on r1: it becomes the floor, and the client sticks to r2.
    topology.updatePrimary({ currentLsn: 980n, sampleSentAt: (onR1.iat + 2) * 1000 + 1 });
    topology.updateReplica('r2', { replayLsn: 990n });
    const later = await begin();
    expect(later.route()).toMatchObject({
      kind: 'replica',
      node: { name: 'r2' },
      reason: 'sticky-replica',
    });
    expect(later.requiredLsn()).toBe(980n);
    // A sample sent before it is no bound.
    topology.updatePrimary({ sampleSentAt: (onR1.iat + 2) * 1000 - 1 });
    expect((await begin()).route()).toMatchObject({ kind: 'barrier' });
  });

  it('a session-key session whose token names another replica than its pin: a barrier, until the monitor sampled the primary after the token', async () => {
    const { engine, topology, clock } = await setup();
    // The session read on r1 (its pin names r1); the client also holds a token from before it
    // had a session key, naming r2.
    const pinned = await engine.begin({ contract: 'monotonic', sessionKey: 'k' });
    const d = pinned.route();
    expect(d).toMatchObject({ kind: 'replica', node: { name: 'r1' } });
    await pinned.observedRead(d);
    const onR2 = await engine.codec.sign({ lsn: 500n, cid: CID, node: 'replica:r2' });
    const begin = () => engine.begin({ contract: 'monotonic', sessionKey: 'k', token: onR2.token });
    expect((await begin()).route()).toMatchObject({
      kind: 'barrier',
      reason: 'sticky-unavailable',
    });
    topology.updatePrimary({ currentLsn: 1000n, sampleSentAt: (onR2.iat + 2) * 1000 + 1 });
    topology.updateReplica('r1', { replayLsn: 1000n });
    clock.advance(10);
    const later = await begin();
    expect(later.route()).toMatchObject({
      kind: 'replica',
      node: { name: 'r1' },
      reason: 'sticky-replica',
    });
    expect(later.requiredLsn()).toBe(1000n);
  });

  it('token-only: a read on the primary is bounded by its measured position and ends the claim', async () => {
    const { engine, topology } = await setup();
    const { token } = await engine.codec.sign({ lsn: 900n, cid: CID, node: 'replica:r1' });
    topology.updateReplica('r1', { health: 'down' });
    topology.updateReplica('r2', { health: 'down' });
    const f = await engine.begin({ contract: 'monotonic', token });
    const barrier = f.route();
    expect(barrier).toMatchObject({ kind: 'barrier', reason: 'sticky-unavailable' });
    f.observedBarrier(1000n, 'query');
    const d = f.route();
    expect(d).toMatchObject({ kind: 'primary' });
    expect(f.needsReadBound(d)).toBe(true);
    await f.observedRead(d, { lsn: 1010n });
    const next = (await engine.codec.verify(f.token)) as { lsn: bigint; node?: string };
    expect(next.lsn).toBe(1010n);
    expect(next.node).toBeUndefined();
  });

  it('does not reissue a token that would tell the client nothing new', async () => {
    const { engine } = await setup();
    const { token } = await engine.codec.sign({ lsn: 900n, cid: CID });
    const f = await engine.begin({ contract: 'monotonic', token });
    const d = f.route();
    await f.observedRead(d, { lsn: 900n });
    expect(f.token).toBeNull();
    await f.observedRead(d, { lsn: 901n });
    expect(f.token).not.toBeNull();
  });

  it('session-key only: sticks to its replica and writes the pin only when the node changes', async () => {
    const writes: unknown[] = [];
    const clock = new ManualClock(1_000_000);
    const inner = memoryPinStore({ clock });
    const store: PinStore = {
      get: (key) => inner.get(key),
      extend: (key, update) => {
        writes.push({ node: update.node, lsn: update.lsn });
        return inner.extend(key, update);
      },
    };
    const topology = new Topology({ replicas: [{ name: 'r1' }, { name: 'r2' }], clock });
    topology.updatePrimary({ currentLsn: 1000n, clusterId: CID });
    topology.updateReplica('r1', {
      replayLsn: 900n,
      lagMs: 200,
      clusterId: CID,
      health: 'healthy',
    });
    topology.updateReplica('r2', { replayLsn: 950n, lagMs: 10, clusterId: CID, health: 'healthy' });
    clock.advance(100);
    const engine = await createEngine({
      topology,
      secret: SECRET,
      clock,
      pinStore: store,
      selection: 'least-lag',
    });

    const read = async () => {
      const f = await engine.begin({ contract: 'monotonic', sessionKey: 'k' });
      const d = f.route();
      // Stickiness keeps replica reads monotonic without measuring; the primary is measured.
      expect(f.needsReadBound(d)).toBe(d.kind === 'primary');
      await f.observedRead(d);
      clock.advance(100);
      return d.kind === 'replica' ? d.node.name : d.kind;
    };
    expect(await read()).toBe('r2');
    expect(writes).toEqual([{ node: 'replica:r2', lsn: null }]);
    // r1 now has less lag, but the session stays on r2: no write for repeated reads.
    topology.updateReplica('r1', { lagMs: 1 });
    expect([await read(), await read(), await read()]).toEqual(['r2', 'r2', 'r2']);
    expect(writes).toHaveLength(1);
    // r2 fails: only the primary is known to be ahead of what the session read on r2.
    topology.updateReplica('r2', { health: 'down' });
    expect(await read()).toBe('primary');
    expect(writes).toHaveLength(2);
    expect(writes[1]).toEqual({ node: 'primary', lsn: null });
    // A write bounds everything read before it: the session is free again.
    const w = await engine.begin({ contract: 'monotonic', sessionKey: 'k' });
    await w.wrote(1001n);
    topology.observeReplayLsn('r1', 1001n);
    expect(await read()).toBe('r1');
  });

  it('session-key only: a primary read with a measured position records the floor', async () => {
    const { engine, store, topology } = await setup();
    topology.updateReplica('r1', { health: 'down' });
    topology.updateReplica('r2', { health: 'down' });
    const f = await engine.begin({ contract: 'monotonic', sessionKey: 'k' });
    const d = f.route();
    expect(d.kind).toBe('primary');
    expect(f.needsReadBound(d)).toBe(true);
    await f.observedRead(d, { lsn: 1000n });
    expect(await store.get(engine.hashSessionKey('k'))).toMatchObject({ lsn: 1000n, node: null });
    topology.updateReplica('r1', { health: 'healthy', replayLsn: 999n });
    const g = await engine.begin({ contract: 'monotonic', sessionKey: 'k' });
    expect(g.requiredLsn()).toBe(1000n);
    expect(g.route()).toMatchObject({ kind: 'check', lsn: 1000n });
  });

  it('reissues a token the primary itself cannot reach (restore), once measured', async () => {
    const { engine, clock, topology } = await setup();
    const { token } = await engine.codec.sign({ lsn: 5000n, cid: CID });
    // Sampled after the token was issued, and still behind it.
    clock.advance(2_000);
    topology.updatePrimary({ currentLsn: 1000n });
    const f = await engine.begin({ contract: 'monotonic', token });
    expect(f.route().kind).toBe('barrier');
    f.observedBarrier(1000n, 'query');
    const d = f.route();
    expect(d.reason).toBe('future-lsn');
    await f.observedRead(d, { lsn: 1000n });
    const result = await engine.codec.verify(f.token);
    expect(result).toMatchObject({ ok: true, lsn: 1000n });
  });
});
