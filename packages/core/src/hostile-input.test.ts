import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseReadAfterWrite } from './contract.js';
import { MAX_COOKIE_VALUES, readCookie, readCookies } from './cookie.js';
import { createEngine } from './engine.js';
import { TokenRejectedError } from './errors.js';
import { requestInput } from './http-headers.js';
import { ManualClock } from './manual-clock.js';
import { toProblem } from './problem.js';
import { Topology } from './topology.js';

const SECRET = 'hostile-input-test-secret-0123456789';
const REASONS = [
  'malformed',
  'oversize',
  'signature',
  'expired',
  'algorithm',
  'typ',
  'foreign-cluster',
  'unknown-kid',
  'claims',
];

async function setup(strict = false) {
  const clock = new ManualClock(1_700_000_000_000);
  const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
  topology.updatePrimary({ currentLsn: 0x3000000n, clusterId: 'c/1', health: 'healthy' });
  topology.updateReplica('r1', {
    replayLsn: 0x2000000n,
    lagMs: 5,
    clusterId: 'c/1',
    health: 'healthy',
  });
  const engine = await createEngine({ topology, secret: SECRET, clock, strict, cookie: true });
  const { token } = await engine.codec.sign({ lsn: 0x2800000n, cid: 'c/1' });
  return { engine, token };
}

// Header values as Node hands them over: strings (any code unit, including lone surrogates
// and latin-1 bytes), arrays for duplicated headers, or nothing.
const headerValue = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.array(fc.string({ maxLength: 32 }), { maxLength: 4 }),
  fc.constant(undefined),
);

/** A valid token with random edits: cut, extended, a character replaced, parts swapped. */
const mutatedToken = (token: string) =>
  fc.oneof(
    fc.nat(token.length).map((n) => token.slice(0, n)),
    fc.string({ maxLength: 40 }).map((s) => token + s),
    fc
      .tuple(fc.nat(token.length - 1), fc.string({ minLength: 1, maxLength: 1 }))
      .map(([i, c]) => token.slice(0, i) + c + token.slice(i + 1)),
    fc.constant(token.split('.').reverse().join('.')),
    fc.string({ unit: 'binary', maxLength: 2_000 }),
    fc
      .array(fc.base64String({ maxLength: 80 }), { minLength: 1, maxLength: 5 })
      .map((p) => p.join('.')),
  );

describe('hostile input, property-based', () => {
  it('readCookie, parseReadAfterWrite and requestInput accept any header value without throwing', () => {
    fc.assert(
      fc.property(
        headerValue,
        headerValue,
        headerValue,
        fc.string({ maxLength: 16 }),
        (t, c, r, name) => {
          const input = requestInput({
            'x-freshness-token': t,
            cookie: c,
            'x-read-after-write': r,
          });
          expect(input.token === undefined || typeof input.token === 'string').toBe(true);
          const cookie = readCookie(input.cookie, name || 'fg_fresh');
          expect(cookie === undefined || typeof cookie === 'string').toBe(true);
          const hint = parseReadAfterWrite(r);
          // Only an explicit true/1 is a hint; anything else leaves the route as declared.
          const values = r === undefined ? [] : typeof r === 'string' ? [r] : r;
          if (hint)
            expect(values.some((v) => ['true', '1'].includes(v.trim().toLowerCase()))).toBe(true);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('the token codec rejects every edited or random token with a known reason, never throws', async () => {
    const { engine, token } = await setup();
    await fc.assert(
      fc.asyncProperty(mutatedToken(token), async (candidate) => {
        const expect_ = { cid: 'c/1' };
        const result = await engine.codec.verify(candidate, expect_);
        if (result.ok) {
          // Only the untouched token (or an equivalent encoding of it) verifies, with its own LSN.
          expect(result.lsn).toBe(0x2800000n);
        } else {
          expect(REASONS).toContain(result.reason);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('begin() never throws in lenient mode, and never routes a strong read to a replica', async () => {
    const { engine, token } = await setup();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutatedToken(token), fc.string({ maxLength: 40 })),
        headerValue,
        headerValue,
        async (candidate, cookie, hint) => {
          const input = requestInput({
            'x-freshness-token': candidate,
            cookie: typeof cookie === 'string' ? `fg_fresh=${cookie}` : cookie,
            'x-read-after-write': hint,
          });
          const strong = await engine.begin({ ...input, contract: 'strong' });
          expect(strong.route().route).toBe('primary');
          const ryw = await engine.begin({ ...input, contract: 'read-your-writes' });
          const decision = ryw.route();
          // A replica only when it has replayed what the request requires.
          if (decision.kind === 'replica') {
            const required = ryw.requiredLsn();
            expect(required === null || 0x2000000n >= required).toBe(true);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('strict mode rejects only with TokenRejectedError (400)', async () => {
    const { engine, token } = await setup(true);
    await fc.assert(
      fc.asyncProperty(mutatedToken(token), async (candidate) => {
        try {
          await engine.begin({ token: candidate });
        } catch (error) {
          expect(error).toBeInstanceOf(TokenRejectedError);
          expect(toProblem(error)?.status).toBe(400);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('cookies: nothing added to the Cookie header makes a read looser than the genuine cookie alone', async () => {
    const { engine } = await setup();
    const older = (await engine.codec.sign({ lsn: 0x1000000n, cid: 'c/1' })).token;
    const genuine = (await engine.codec.sign({ lsn: 0x2800000n, cid: 'c/1' })).token;
    const { token: foreign } = await engine.codec.sign({ lsn: 0x1n, cid: 'c/2' });
    // What a third party can add: other cookies, junk, older valid tokens, edited tokens, all
    // under our name or another, before or after the genuine one.
    const segment = fc.oneof(
      fc.constant(`fg_fresh=${older}`),
      fc.constant(`fg_fresh=${foreign}`),
      mutatedToken(genuine).map((t) => `fg_fresh=${t}`),
      fc.string({ maxLength: 30 }).map((v) => `fg_fresh=${v}`),
      fc.string({ maxLength: 30 }),
      fc.constant('fg_fresh'),
      fc.constant('='),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { maxLength: 12 }),
        fc.array(segment, { maxLength: 4 }),
        fc.constantFrom('; ', ';', ';;'),
        async (before, after, separator) => {
          const cookie = [...before, `fg_fresh=${genuine}`, ...after].join(separator);
          for (const contract of ['read-your-writes', 'monotonic', 'causal'] as const) {
            const f = await engine.begin({ contract, cookie });
            const decision = f.route();
            // Either the genuine token's LSN is required, or the read goes to the primary, or
            // it reads at a barrier (the primary's position after the request arrived: later
            // than any token).
            if (decision.kind !== 'primary' && decision.kind !== 'barrier')
              expect(f.requiredLsn()).toBeGreaterThanOrEqual(0x2800000n);
            expect(decision.kind === 'replica').toBe(false); // r1 is at 0x2000000: too old
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('token strings: nothing sent in the header makes a read looser than the cookie alone', async () => {
    const { engine } = await setup();
    const genuine = (await engine.codec.sign({ lsn: 0x2800000n, cid: 'c/1' })).token;
    const older = (await engine.codec.sign({ lsn: 0x1000000n, cid: 'c/1' })).token;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutatedToken(genuine), mutatedToken(older), fc.constant(older)),
        async (header) => {
          const f = await engine.begin({ token: header, cookie: `fg_fresh=${genuine}` });
          expect(f.requiredLsn()).toBeGreaterThanOrEqual(0x2800000n);
          expect(f.route().kind).not.toBe('replica');
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('bounded work per request: at most MAX_COOKIE_VALUES + 1 token verifications, whatever the headers', async () => {
    const { engine } = await setup();
    const valid = (await engine.codec.sign({ lsn: 0x2800000n, cid: 'c/1' })).token;
    let verifies = 0;
    const verify = engine.codec.verify.bind(engine.codec);
    const verifyNow = engine.codec.verifyNow.bind(engine.codec);
    Object.assign(engine.codec, {
      verify: (...args: Parameters<typeof verify>) => {
        verifies++;
        return verify(...args);
      },
      verifyNow: (...args: Parameters<typeof verifyNow>) => {
        verifies++;
        return verifyNow(...args);
      },
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(mutatedToken(valid), fc.constant(valid)), { maxLength: 60 }),
        fc.oneof(mutatedToken(valid), fc.constant(undefined)),
        async (values, header) => {
          verifies = 0;
          const cookie = values.map((v) => `fg_fresh=${v}`).join('; ');
          await engine.begin({ token: header, cookie });
          // Each presented token costs at most a cache lookup and a verify.
          expect(verifies).toBeLessThanOrEqual(2 * (MAX_COOKIE_VALUES + 1));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('bounded time per request: any 256 KB Cookie header is parsed in linear time', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), (pattern) => {
        const header = pattern.repeat(Math.ceil((256 * 1024) / pattern.length));
        let best = Number.POSITIVE_INFINITY;
        for (let i = 0; i < 3; i++) {
          const start = performance.now();
          readCookies(header, ['__Host-fg_fresh', 'fg_fresh']);
          readCookie(header, 'fg_fresh');
          best = Math.min(best, performance.now() - start);
        }
        // Linear: a few ms here; the former quadratic parser took ~0.5 s for 256 KB of `;`.
        expect(best).toBeLessThan(100);
      }),
      { numRuns: 100, examples: [[';'], [' ;'], ['a'], ['fg_fresh=x;'], ['=;']] },
    );
  });
});
