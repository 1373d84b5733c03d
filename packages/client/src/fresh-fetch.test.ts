import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardFreshness } from './forward.js';
import { createFreshFetch } from './fresh-fetch.js';
import { readToken } from './token.js';

// Tokens in the wire format (compact JWS, payload { v, lsn, cid, iat, exp }); the client reads
// the payload only, so the signature part is irrelevant here.
function token(
  lsn: string,
  options: { cid?: string; iat?: number; exp?: number | null } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = {
    v: 1,
    lsn,
    cid: options.cid ?? 'c/1',
    iat: options.iat ?? now,
    exp: options.exp === null ? undefined : (options.exp ?? now + 600),
  };
  return `${part({ alg: 'HS256', typ: 'freshgate+jwt' })}.${part(payload)}.sig`;
}

// A server that answers `/issue?lsn=…&delay=…` with a token of that LSN after `delay` ms,
// and echoes the request headers it received.
// `/reject` answers like a strict server refusing the token; `/redirect?to=` redirects.
let server: Server;
let thirdParty: Server;
let base: string;
let other: string;
const seen: IncomingHttpHeaders[] = [];
function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  seen.push(req.headers);
  if (url.pathname === '/reject') {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'application/problem+json');
    res.end(
      JSON.stringify({
        type: 'https://freshgate.dev/problems/token-rejected',
        status: 400,
        reason: 'unknown-kid',
      }),
    );
    return;
  }
  if (url.pathname === '/redirect') {
    res.statusCode = 302;
    res.setHeader('Location', url.searchParams.get('to') as string);
    res.end();
    return;
  }
  const lsn = url.searchParams.get('lsn');
  const cid = url.searchParams.get('cid') ?? undefined;
  const iat = url.searchParams.has('iat') ? Number(url.searchParams.get('iat')) : undefined;
  const exp = url.searchParams.get('exp');
  setTimeout(
    () => {
      if (lsn !== null) {
        const options = { cid, iat, exp: exp === 'none' ? null : exp ? Number(exp) : undefined };
        res.setHeader('X-Freshness-Token', token(lsn, options));
      }
      res.end('ok');
    },
    Number(url.searchParams.get('delay') ?? 0),
  );
}
async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}
beforeAll(async () => {
  server = createServer(handler);
  thirdParty = createServer(handler);
  base = await listen(server);
  other = await listen(thirdParty);
});
afterAll(async () => {
  for (const s of [server, thirdParty])
    await new Promise<void>((resolve) => s.close(() => resolve()));
});

const last = () => seen.at(-1) as IncomingHttpHeaders;

describe('createFreshFetch', () => {
  it('keeps the token of a response and sends it back on the next request', async () => {
    const api = createFreshFetch({ origins: [base] });
    await api(`${base}/issue?lsn=0/3000060`);
    expect(readToken(api.token as string)?.lsn).toBe(0x3000060n);
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(api.token);
  });

  it('never replaces a newer token with an older one from a response that arrives later', async () => {
    const api = createFreshFetch({ origins: [base] });
    await Promise.all([
      api(`${base}/issue?lsn=0/100&delay=150`),
      api(`${base}/issue?lsn=0/200&delay=10`),
    ]);
    expect(readToken(api.token as string)?.lsn).toBe(0x200n);
  });

  it('compares LSNs as 64-bit numbers, not as text', async () => {
    const api = createFreshFetch({ origins: [base] });
    await api(`${base}/issue?lsn=A/0`);
    await api(`${base}/issue?lsn=9/FFFFFFFF`);
    expect(readToken(api.token as string)?.lsn).toBe(0xa00000000n);
    expect(api.offer(token('10/0'))).toBe(true);
    expect(api.offer(token('F/FFFFFFFF'))).toBe(false);
  });

  it('takes the token of another cluster when it was issued later (failover)', async () => {
    const api = createFreshFetch({ origins: [base] });
    api.offer(token('20/0', { cid: 'old/1', iat: 100 }));
    await api(`${base}/issue?lsn=0/10&cid=new/2&iat=${Math.floor(Date.now() / 1000)}`);
    expect(readToken(api.token as string)?.cid).toBe('new/2');
  });

  it('ignores what is not a token', async () => {
    const api = createFreshFetch({ origins: [base] });
    expect(api.offer('garbage')).toBe(false);
    expect(api.offer(`a.${Buffer.from('{"lsn":"x"}').toString('base64url')}.c`)).toBe(false);
    expect(api.token).toBeNull();
  });

  it('sets X-Read-After-Write per call or for every call, and leaves a caller-set token alone', async () => {
    const api = createFreshFetch({ origins: [base] });
    api.offer(token('0/500'));
    await api(`${base}/read`, { readAfterWrite: true });
    expect(last()['x-read-after-write']).toBe('true');
    await api(`${base}/read`);
    expect(last()['x-read-after-write']).toBeUndefined();
    await api(`${base}/read`, { headers: { 'X-Freshness-Token': 'explicit' } });
    expect(last()['x-freshness-token']).toBe('explicit');
    const always = createFreshFetch({ origins: [base], readAfterWrite: true });
    await always(new Request(`${base}/read`, { headers: { 'X-Other': '1' } }));
    expect(last()['x-read-after-write']).toBe('true');
    expect(last()['x-other']).toBe('1');
  });

  it('persists the token in Web Storage and starts from it', async () => {
    const map = new Map<string, string>();
    const storage = {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k),
    };
    const first = createFreshFetch({ origins: [base], persistence: storage });
    await first(`${base}/issue?lsn=0/700`);
    expect(map.get('freshgate.token')).toBe(first.token);
    const reloaded = createFreshFetch({ origins: [base], persistence: storage });
    expect(reloaded.token).toBe(first.token);
    reloaded.clear();
    expect(map.has('freshgate.token')).toBe(false);
    expect(() => createFreshFetch({ origins: [base], persistence: 'sessionStorage' })).toThrow(
      /browser/,
    );
  });

  it('shares newer tokens between tabs over a BroadcastChannel', async () => {
    const a = createFreshFetch({ origins: [base], sync: 'freshgate-test' });
    const b = createFreshFetch({ origins: [base], sync: 'freshgate-test' });
    try {
      await a(`${base}/issue?lsn=1/0`);
      await expect.poll(() => b.token).toBe(a.token);
      b.offer(token('0/1'));
      await new Promise((r) => setTimeout(r, 50));
      expect(readToken(a.token as string)?.lsn).toBe(0x100000000n);
    } finally {
      a.close();
      b.close();
    }
  });

  it('sends the newer of its own token and an extra source (a server forwarding its request)', async () => {
    let forwarded: string | null = token('5/0');
    const api = createFreshFetch({ origins: [base], token: () => forwarded });
    api.offer(token('4/0'));
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(forwarded);
    forwarded = null;
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(api.token);
  });
});

describe('createFreshFetch: only trusted origins', () => {
  it('never sends the token to another origin, nor keeps a token from one', async () => {
    const api = createFreshFetch({ origins: [base] });
    await api(`${base}/issue?lsn=0/700`);
    const mine = api.token;
    expect(mine).not.toBeNull();
    await api(`${other}/issue?lsn=FF/0`);
    expect(last()['x-freshness-token']).toBeUndefined();
    expect(api.token).toBe(mine);
    // Nor by way of a redirect from a trusted origin to another one.
    await api(`${base}/redirect?to=${encodeURIComponent(`${other}/issue?lsn=FE/0`)}`);
    expect(api.token).toBe(mine);
    // A configured origin is trusted both ways.
    const both = createFreshFetch({ origins: [base, `${other}/some/path`] });
    await both(`${other}/issue?lsn=0/800`);
    expect(readToken(both.token as string)?.lsn).toBe(0x800n);
    await both(`${other}/read`);
    expect(last()['x-freshness-token']).toBe(both.token);
  });

  it('outside a browser, the origins must be named', () => {
    expect(() => createFreshFetch()).toThrow(/origins/);
    expect(() => createFreshFetch({ origins: ['not a url'] })).toThrow(/origins/);
  });

  it('keeps only tokens with a finite expiry within maxTokenTtl', async () => {
    const api = createFreshFetch({ origins: [base] });
    const now = Math.floor(Date.now() / 1000);
    await api(`${base}/issue?lsn=FF/0&exp=none`);
    expect(api.token).toBeNull();
    await api(`${base}/issue?lsn=FF/0&exp=${now + 365 * 86_400}`);
    expect(api.token).toBeNull();
    expect(api.offer(token('FF/0', { exp: null }))).toBe(false);
    expect(api.offer(token('FF/0', { exp: now - 1 }))).toBe(false);
    expect(api.offer(token('1/0'))).toBe(true);
    const longer = createFreshFetch({ origins: [base], maxTokenTtl: 3600 });
    expect(longer.offer(token('1/0', { exp: now + 3000 }))).toBe(true);
    expect(() => createFreshFetch({ origins: [base], maxTokenTtl: 0 })).toThrow(/maxTokenTtl/);
  });

  it('drops the kept token when the server answers that it was rejected', async () => {
    const api = createFreshFetch({ origins: [base] });
    api.offer(token('1/0'));
    const response = await api(`${base}/reject`);
    expect(response.status).toBe(400);
    // The caller can still read the body.
    expect(await response.json()).toMatchObject({ reason: 'unknown-kid' });
    expect(api.token).toBeNull();
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBeUndefined();
  });
});

describe('forwardFreshness', () => {
  it("builds the header from a request's freshness, a token, or nothing", () => {
    const t = token('1/0');
    expect(forwardFreshness({ freshness: { forwardToken: () => t } })).toEqual({
      'X-Freshness-Token': t,
    });
    expect(forwardFreshness({ freshness: { forwardToken: () => null } })).toEqual({});
    expect(forwardFreshness(t)).toEqual({ 'X-Freshness-Token': t });
    expect(forwardFreshness(undefined)).toEqual({});
  });
});
