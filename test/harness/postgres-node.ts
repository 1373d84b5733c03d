import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { runAs } from './run-as.js';
import { ServerProcess } from './server-process.js';
import { waitFor } from './wait.js';
import type { Workspace } from './workspace.js';

const execFileAsync = promisify(execFile);

/** Runs a PostgreSQL tool as the server account. */
export async function runTool(bin: string, tool: string, args: string[]): Promise<string> {
  const { uid, gid } = runAs();
  try {
    const { stdout } = await execFileAsync(join(bin, tool), args, { uid, gid, timeout: 120_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

export type PostgresRole = 'primary' | 'replica';

/** One PostgreSQL server of a harness cluster, on a loopback port. */
export class PostgresNode {
  readonly host = '127.0.0.1';
  readonly user = 'postgres';
  readonly database = 'postgres';
  private readonly process: ServerProcess;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly bin: string,
    socketDir: string,
    workspace: Workspace,
    public role: PostgresRole,
  ) {
    // Only what must differ per node goes on the command line: settings given there beat
    // ALTER SYSTEM, and tests change recovery settings with ALTER SYSTEM.
    this.process = new ServerProcess(
      workspace,
      join(bin, 'postgres'),
      () => [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${socketDir}`,
      ],
      join(workspace.dir, `${name}.log`),
      // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends with it.
      'SIGQUIT',
    );
  }

  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  get url(): string {
    return `postgres://${this.user}@${this.host}:${this.port}/${this.database}`;
  }

  /** Options for `new pg.Pool(...)` / `new pg.Client(...)`. */
  get connection(): pg.ClientConfig {
    return { host: this.host, port: this.port, user: this.user, database: this.database };
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Starts the server and waits until it accepts queries. */
  async start(): Promise<void> {
    // A postmaster killed with SIGKILL leaves its pid file; PostgreSQL checks it is stale.
    // Its backends may hold the shared memory segment a moment longer, so retry briefly.
    await waitFor(
      `${this.name} to start`,
      async () => {
        if (!this.process.running) this.process.start();
        await new Promise((r) => setTimeout(r, 25));
        if (!this.process.running) return undefined;
        await this.query('SELECT 1');
        return true;
      },
      { timeoutMs: 30_000 },
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}\n--- ${this.name} log ---\n${this.process.log().slice(-2000)}`,
      );
    });
  }

  /** Fast shutdown (SIGINT): clients are disconnected, a shutdown checkpoint is written. */
  async stop(): Promise<void> {
    await this.process.stop('SIGINT');
  }

  /** Crash: SIGKILL to the postmaster. Restart with `start()`. */
  async kill(): Promise<void> {
    await this.process.stop('SIGKILL');
  }

  /** Runs one statement on a fresh connection and returns its rows. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<R[]> {
    const client = new pg.Client({ ...this.connection, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    await client.connect();
    try {
      const result = await client.query<R>(text, values);
      return result.rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Destroys the data directory (the server must be stopped). */
  wipe(): void {
    if (existsSync(this.dataDir)) rmSync(this.dataDir, { recursive: true, force: true });
  }

  log(): string {
    return this.process.log();
  }

  get binDir(): string {
    return this.bin;
  }
}
