import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardFreshness } from './forward.js';
import { createFreshFetch } from './fresh-fetch.js';
import { readToken } from './token.js';

// Tokens in the wire format (compact JWS, payload { v, lsn, cid, iat, exp }); the client reads
// the payload only, so the signature part is irrelevant here.
function token(lsn: string, options: { cid?: string; iat?: number; exp?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = {
    v: 1,
    lsn,
    cid: options.cid ?? 'c/1',
    iat: options.iat ?? now,
    exp: options.exp ?? now + 600,
  };
  return `${part({ alg: 'HS256', typ: 'freshgate+jwt' })}.${part(payload)}.sig`;
}

// A server that answers `/issue?lsn=…&delay=…` with a token of that LSN after `delay` ms,
// and echoes the request headers it received.
let server: Server;
let base: string;
const seen: IncomingHttpHeaders[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push(req.headers);
    const lsn = url.searchParams.get('lsn');
    const cid = url.searchParams.get('cid') ?? undefined;
    const iat = url.searchParams.has('iat') ? Number(url.searchParams.get('iat')) : undefined;
    setTimeout(
      () => {
        if (lsn !== null) res.setHeader('X-Freshness-Token', token(lsn, { cid, iat }));
        res.end('ok');
      },
      Number(url.searchParams.get('delay') ?? 0),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const last = () => seen.at(-1) as IncomingHttpHeaders;

describe('createFreshFetch', () => {
  it('keeps the token of a response and sends it back on the next request', async () => {
    const api = createFreshFetch();
    await api(`${base}/issue?lsn=0/3000060`);
    expect(readToken(api.token as string)?.lsn).toBe(0x3000060n);
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(api.token);
  });

  it('never replaces a newer token with an older one from a response that arrives later', async () => {
    const api = createFreshFetch();
    await Promise.all([
      api(`${base}/issue?lsn=0/100&delay=150`),
      api(`${base}/issue?lsn=0/200&delay=10`),
    ]);
    expect(readToken(api.token as string)?.lsn).toBe(0x200n);
  });

  it('compares LSNs as 64-bit numbers, not as text', async () => {
    const api = createFreshFetch();
    await api(`${base}/issue?lsn=A/0`);
    await api(`${base}/issue?lsn=9/FFFFFFFF`);
    expect(readToken(api.token as string)?.lsn).toBe(0xa00000000n);
    expect(api.offer(token('10/0'))).toBe(true);
    expect(api.offer(token('F/FFFFFFFF'))).toBe(false);
  });

  it('takes the token of another cluster when it was issued later (failover)', async () => {
    const api = createFreshFetch();
    api.offer(token('20/0', { cid: 'old/1', iat: 100 }));
    await api(`${base}/issue?lsn=0/10&cid=new/2&iat=${Math.floor(Date.now() / 1000)}`);
    expect(readToken(api.token as string)?.cid).toBe('new/2');
  });

  it('ignores what is not a token', async () => {
    const api = createFreshFetch();
    expect(api.offer('garbage')).toBe(false);
    expect(api.offer(`a.${Buffer.from('{"lsn":"x"}').toString('base64url')}.c`)).toBe(false);
    expect(api.token).toBeNull();
  });

  it('sets X-Read-After-Write per call or for every call, and leaves a caller-set token alone', async () => {
    const api = createFreshFetch();
    api.offer(token('0/500'));
    await api(`${base}/read`, { readAfterWrite: true });
    expect(last()['x-read-after-write']).toBe('true');
    await api(`${base}/read`);
    expect(last()['x-read-after-write']).toBeUndefined();
    await api(`${base}/read`, { headers: { 'X-Freshness-Token': 'explicit' } });
    expect(last()['x-freshness-token']).toBe('explicit');
    const always = createFreshFetch({ readAfterWrite: true });
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
    const first = createFreshFetch({ persistence: storage });
    await first(`${base}/issue?lsn=0/700`);
    expect(map.get('freshgate.token')).toBe(first.token);
    const reloaded = createFreshFetch({ persistence: storage });
    expect(reloaded.token).toBe(first.token);
    reloaded.clear();
    expect(map.has('freshgate.token')).toBe(false);
    expect(() => createFreshFetch({ persistence: 'sessionStorage' })).toThrow(/browser/);
  });

  it('shares newer tokens between tabs over a BroadcastChannel', async () => {
    const a = createFreshFetch({ sync: 'freshgate-test' });
    const b = createFreshFetch({ sync: 'freshgate-test' });
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
    const api = createFreshFetch({ token: () => forwarded });
    api.offer(token('4/0'));
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(forwarded);
    forwarded = null;
    await api(`${base}/read`);
    expect(last()['x-freshness-token']).toBe(api.token);
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
