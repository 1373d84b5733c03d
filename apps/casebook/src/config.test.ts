import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

const ENV = { DATABASE_PRIMARY_URL: 'postgres://app@db/app' };

describe('readConfig', () => {
  it('refuses to start without FRESHGATE_SECRET: there is no published secret to fall back to', () => {
    expect(() => readConfig({ ...ENV })).toThrow(/FRESHGATE_SECRET is required/);
    expect(() => readConfig({ ...ENV, FRESHGATE_SECRET: '' })).toThrow(/FRESHGATE_SECRET/);
  });

  it('uses FRESHGATE_SECRET, or the per-run secret `pnpm demo` generates', () => {
    const secret = 'a-secret-of-at-least-32-bytes-0123456789';
    expect(readConfig({ ...ENV, FRESHGATE_SECRET: secret }).secret).toBe(secret);
    expect(readConfig({ ...ENV }, { fallbackSecret: 'generated' }).secret).toBe('generated');
    expect(
      readConfig({ ...ENV, FRESHGATE_SECRET: secret }, { fallbackSecret: 'generated' }).secret,
    ).toBe(secret);
  });

  it('serves /metrics only when CASEBOOK_METRICS=1', () => {
    const secret = 'a-secret-of-at-least-32-bytes-0123456789';
    expect(readConfig({ ...ENV, FRESHGATE_SECRET: secret }).metrics).toBe(false);
    expect(readConfig({ ...ENV, FRESHGATE_SECRET: secret, CASEBOOK_METRICS: '1' }).metrics).toBe(
      true,
    );
  });
});
