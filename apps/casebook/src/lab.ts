import pg from 'pg';
import { HttpProblem, notFound } from './problem.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A replica's replay state as the replica itself reports it (never what the lab last set). */
export interface ReplicaLabState {
  replica: string;
  /** `pg_get_wal_replay_pause_state()`: `not paused`, `pause requested` or `paused`. */
  replay: 'running' | 'pause requested' | 'paused';
  /** `recovery_min_apply_delay` in effect, ms. */
  delayMs: number;
}

const STATE_SQL = `SELECT pg_get_wal_replay_pause_state() AS state,
  (SELECT setting::int FROM pg_settings WHERE name = 'recovery_min_apply_delay') AS delay_ms`;

/**
 * Lab controls: pause/resume WAL replay and set an apply delay on a replica, to watch
 * freshgate route around the lag. Needs a superuser connection to each replica.
 */
export class Lab {
  constructor(
    private readonly primaryUrl: string,
    private readonly replicaUrls: ReadonlyMap<string, string>,
  ) {}

  #url(name: string): string {
    const url = this.replicaUrls.get(name);
    if (!url) throw notFound(`no replica named ${name}`);
    return url;
  }

  /** Names of the replicas the lab controls. */
  get replicas(): string[] {
    return [...this.replicaUrls.keys()];
  }

  /** Reads back `name`'s pause state and apply delay from the replica. */
  async state(name: string): Promise<ReplicaLabState> {
    const [row] = await run<{ state: string; delay_ms: number }>(this.#url(name), STATE_SQL);
    return {
      replica: name,
      replay: row?.state === 'not paused' ? 'running' : (row?.state as ReplicaLabState['replay']),
      delayMs: row?.delay_ms ?? 0,
    };
  }

  /** {@link Lab.state} of every replica; a replica that cannot be reached is left out. */
  async states(): Promise<ReplicaLabState[]> {
    const states = await Promise.allSettled(this.replicas.map((name) => this.state(name)));
    return states.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  /** Pauses replay and waits until the server confirms it (a pause is only a request). */
  async pause(name: string): Promise<ReplicaLabState> {
    const url = this.#url(name);
    await run(url, 'SELECT pg_wal_replay_pause()');
    for (let i = 0; i < 100; i++) {
      const [row] = await run<{ state: string }>(
        url,
        'SELECT pg_get_wal_replay_pause_state() AS state',
      );
      if (row?.state === 'paused') return this.state(name);
      // Recovery acts on the request when it next reads WAL: give it a record to read.
      await run(this.primaryUrl, "SELECT pg_logical_emit_message(false, 'casebook', 'lab')");
      await sleep(20);
    }
    throw new HttpProblem(503, 'Service Unavailable', `${name} did not confirm the pause`);
  }

  async resume(name: string): Promise<ReplicaLabState> {
    await run(this.#url(name), 'SELECT pg_wal_replay_resume()');
    return this.state(name);
  }

  /**
   * Sets `recovery_min_apply_delay` (ms) with a reload, and answers once the replica reports
   * the new value (a reload reaches new sessions a moment later).
   */
  async delay(name: string, ms: number): Promise<ReplicaLabState> {
    const url = this.#url(name);
    const delayMs = Math.round(ms);
    await run(url, `ALTER SYSTEM SET recovery_min_apply_delay = '${delayMs}ms'`);
    await run(url, 'SELECT pg_reload_conf()');
    for (let i = 0; i < 100; i++) {
      const state = await this.state(name);
      if (state.delayMs === delayMs) return state;
      await sleep(20);
    }
    throw new HttpProblem(503, 'Service Unavailable', `${name} did not apply the new delay`);
  }
}
