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

  /** Pauses replay and waits until the server confirms it (a pause is only a request). */
  async pause(name: string): Promise<{ replica: string; replay: string }> {
    const url = this.#url(name);
    await run(url, 'SELECT pg_wal_replay_pause()');
    for (let i = 0; i < 100; i++) {
      const [row] = await run<{ state: string }>(
        url,
        'SELECT pg_get_wal_replay_pause_state() AS state',
      );
      if (row?.state === 'paused') return { replica: name, replay: 'paused' };
      // Recovery acts on the request when it next reads WAL: give it a record to read.
      await run(this.primaryUrl, "SELECT pg_logical_emit_message(false, 'casebook', 'lab')");
      await sleep(20);
    }
    throw new HttpProblem(503, 'Service Unavailable', `${name} did not confirm the pause`);
  }

  async resume(name: string): Promise<{ replica: string; replay: string }> {
    await run(this.#url(name), 'SELECT pg_wal_replay_resume()');
    return { replica: name, replay: 'running' };
  }

  /** Sets `recovery_min_apply_delay` (ms) with a reload. */
  async delay(name: string, ms: number): Promise<{ replica: string; delayMs: number }> {
    const url = this.#url(name);
    await run(url, `ALTER SYSTEM SET recovery_min_apply_delay = '${Math.round(ms)}ms'`);
    await run(url, 'SELECT pg_reload_conf()');
    return { replica: name, delayMs: Math.round(ms) };
  }
}
