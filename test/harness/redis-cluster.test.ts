import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findRedis, startRedisCluster } from './index.js';

const run = promisify(execFile);

describe('Redis Cluster', () => {
  it('starts 3 masters that cover every slot, and stops them', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    try {
      const cli = findRedis().cli!;
      const port = String(cluster.nodes[0]!.port);
      const { stdout } = await run(cli, ['-p', port, 'cluster', 'info']);
      expect(stdout).toContain('cluster_state:ok');
      expect(stdout).toContain('cluster_slots_assigned:16384');
      expect(stdout).toContain('cluster_known_nodes:3');
      // -c follows MOVED redirections: keys land on different masters.
      for (const key of ['a', 'b', 'c', 'd']) {
        await run(cli, ['-c', '-p', port, 'set', key, '1']);
      }
    } finally {
      await cluster.stop();
    }
    expect(cluster.nodes.every((n) => !n.running)).toBe(true);
  });
});
