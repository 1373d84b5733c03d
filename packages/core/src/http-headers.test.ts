import { describe, expect, it } from 'vitest';
import { checkOptions } from './check-options.js';
import { ConfigError } from './errors.js';
import {
  type HeaderTarget,
  mergeExposeHeaders,
  requestInput,
  responseSink,
} from './http-headers.js';

function target(initial: Record<string, string | string[]> = {}) {
  const headers: Record<string, string | string[]> = { ...initial };
  const t: HeaderTarget = {
    get: (name) => headers[name.toLowerCase()],
    set: (name, value) => {
      headers[name.toLowerCase()] = value;
    },
    append: (name, value) => {
      const key = name.toLowerCase();
      const current = headers[key];
      headers[key] = current === undefined ? [value] : [...[current].flat(), value];
    },
    remove: (name) => {
      delete headers[name.toLowerCase()];
    },
  };
  return { headers, sink: responseSink(t) };
}

describe('requestInput', () => {
  it('reads the token header, the raw cookie header and the read-after-write hint', () => {
    expect(
      requestInput({
        'x-freshness-token': 'abc',
        cookie: 'fg_fresh=def',
        'x-read-after-write': 'true',
      }),
    ).toEqual({ token: 'abc', cookie: 'fg_fresh=def', readAfterWrite: 'true' });
    expect(requestInput({ 'x-freshness-token': ['a', 'b'] }).token).toBe('a');
    expect(requestInput({})).toEqual({
      token: undefined,
      cookie: undefined,
      readAfterWrite: undefined,
    });
  });
});

describe('mergeExposeHeaders', () => {
  it("adds freshgate's headers to an application's list, once, keeping its entries", () => {
    expect(mergeExposeHeaders(undefined)).toBe(
      'X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
    expect(mergeExposeHeaders('X-Request-Id, x-freshness-token')).toBe(
      'X-Request-Id, x-freshness-token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
    expect(mergeExposeHeaders(['*'])).toBe(
      '*, X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
    expect(mergeExposeHeaders('X-Freshness-Token,X-Freshness-Route,X-Freshness-Lag-Ms')).toBeNull();
  });
});

describe('responseSink', () => {
  it('appends Set-Cookie next to the application cookies', () => {
    const { headers, sink } = target({ 'set-cookie': 'sid=1' });
    sink.setHeader('Set-Cookie', 'fg_fresh=t; Max-Age=600');
    expect(headers['set-cookie']).toEqual(['sid=1', 'fg_fresh=t; Max-Age=600']);
  });

  it('replaces an earlier fg_fresh cookie (one per response, the newest) and keeps the application cookies', () => {
    const { headers, sink } = target({ 'set-cookie': ['sid=1', 'theme=dark'] });
    for (let i = 1; i <= 5; i++) sink.setHeader('Set-Cookie', `fg_fresh=t${i}; Max-Age=600`);
    expect(headers['set-cookie']).toEqual(['sid=1', 'theme=dark', 'fg_fresh=t5; Max-Age=600']);
    const alone = target();
    alone.sink.setHeader('Set-Cookie', 'fg_fresh=; Max-Age=0');
    alone.sink.setHeader('Set-Cookie', 'fg_fresh=t1; Max-Age=600');
    expect(alone.headers['set-cookie']).toEqual(['fg_fresh=t1; Max-Age=600']);
  });

  it('exposes freshgate headers to cross-origin code, merged into an existing CORS list', () => {
    const { headers, sink } = target({ 'access-control-expose-headers': 'X-Request-Id' });
    sink.setHeader('X-Freshness-Route', 'primary');
    sink.setHeader('X-Freshness-Token', 'tok');
    expect(headers['x-freshness-route']).toBe('primary');
    expect(headers['access-control-expose-headers']).toBe(
      'X-Request-Id, X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
  });

  it('merges the list again when the application replaced it between two freshgate headers', () => {
    const { headers, sink } = target();
    sink.setHeader('X-Freshness-Route', 'primary');
    expect(headers['access-control-expose-headers']).toBe(
      'X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
    headers['access-control-expose-headers'] = 'X-Request-Id';
    sink.setHeader('X-Freshness-Token', 'tok');
    expect(headers['access-control-expose-headers']).toBe(
      'X-Request-Id, X-Freshness-Token, X-Freshness-Route, X-Freshness-Lag-Ms',
    );
  });
});

describe('checkOptions', () => {
  it('names an unknown option with did-you-mean', () => {
    expect(() => checkOptions({ sesionKey: 1 }, ['engine', 'sessionKey'])).toThrow(
      /`sesionKey`.*Did you mean "sessionKey"/,
    );
    expect(() => checkOptions(null, ['engine'], 'freshgate() options')).toThrow(ConfigError);
    expect(() => checkOptions({ engine: 1 }, ['engine'])).not.toThrow();
  });
});
