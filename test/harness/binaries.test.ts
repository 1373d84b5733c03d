import { afterEach, describe, expect, it, vi } from 'vitest';
import { findPostgres, findRedis, HarnessError } from './index.js';

describe('binary discovery', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('finds PostgreSQL server binaries with pg_basebackup on this machine', () => {
    const found = findPostgres();
    expect(found.bin).toMatch(/bin$/);
    expect(found.hasBasebackup).toBe(true);
  });

  it('names the install command when FRESHGATE_PG_BIN points nowhere', () => {
    vi.stubEnv('FRESHGATE_PG_BIN', '/nonexistent');
    expect(() => findPostgres()).toThrow(HarnessError);
    expect(() => findPostgres()).toThrow(/apt-get install -y postgresql/);
  });

  it('names the install command when redis-server is not on PATH', () => {
    vi.stubEnv('PATH', '/nonexistent');
    expect(() => findRedis()).toThrow(/apt-get update && apt-get install -y redis-server/);
  });
});
