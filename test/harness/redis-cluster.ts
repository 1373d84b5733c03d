import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findRedis, REDIS_INSTALL_HELP } from './binaries.js';
import { HarnessError } from './errors.js';
import { freePort } from './ports.js';
import { RedisServer } from './redis-server.js';
import { waitFor } from './wait.js';
import { Workspace } from './workspace.js';

const execFileAsync = promisify(execFile);

/** A Redis Cluster of masters only, for the cluster tests of the pin store. */
export class RedisCluster {
  private stopped = false;

  constructor(
    readonly workspace: Workspace,
    readonly nodes: RedisServer[],
  ) {}

  /** Seed nodes for `new Redis.Cluster(...)`. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: n.host, port: n.port }));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => n.stop()));
    this.workspace.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts `masters` redis-servers in cluster mode and joins them with
 * `redis-cli --cluster create` (no replicas). Resolves when `CLUSTER INFO` reports `ok`.
 */
export async function startRedisCluster({ masters = 3 } = {}): Promise<RedisCluster> {
  const { server, cli } = findRedis();
  if (!cli) throw new HarnessError(`redis-cli was not found on PATH.\n${REDIS_INSTALL_HELP}`);
  const workspace = new Workspace('freshgate-redis-cluster-');
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      // The cluster bus listens on the port + 10000.
      const port = await freePort(10_000);
      nodes.push(
        new RedisServer(`redis-${i + 1}`, port, server, workspace, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '2000',
        ]),
      );
    }
    await Promise.all(nodes.map((n) => n.start()));
    await execFileAsync(
      cli,
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await waitFor('the Redis Cluster to report cluster_state:ok', async () => {
      for (const node of nodes) {
        const info = await clusterInfo(cli, node.port);
        if (!info.includes('cluster_state:ok')) return undefined;
      }
      return true;
    });
    return new RedisCluster(workspace, nodes);
  } catch (error) {
    await Promise.all(nodes.map((n) => n.kill()));
    workspace.close();
    throw error;
  }
}

async function clusterInfo(cli: string, port: number): Promise<string> {
  const { stdout } = await execFileAsync(cli, ['-p', String(port), 'cluster', 'info'], {
    timeout: 5_000,
  });
  return stdout;
}
