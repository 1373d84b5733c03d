import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chownOne } from './run-as.js';

const REAPER = new URL('./reaper.mjs', import.meta.url).pathname;

/**
 * A temp directory that owns every server process started in it. A detached reaper process
 * removes all of it when the process that created it goes away, however it goes away.
 */
export class Workspace {
  readonly dir: string;
  private readonly reaper: ChildProcess;
  private closed = false;

  constructor(prefix = 'freshgate-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(this.dir, 0o700);
    chownOne(this.dir);
    writeFileSync(join(this.dir, 'pids'), '');
    this.reaper = spawn(process.execPath, [REAPER, String(process.pid), this.dir], {
      detached: true,
      stdio: 'ignore',
    });
    this.reaper.unref();
  }

  /** A subdirectory owned by the server account. */
  subdir(name: string): string {
    const path = join(this.dir, name);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    chownOne(path);
    return path;
  }

  /** Tells the reaper about a server and the signal that stops it quickly. */
  register(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
    appendFileSync(join(this.dir, 'pids'), `${pid} ${signal}\n`);
  }

  get reaperPid(): number | undefined {
    return this.reaper.pid;
  }

  /** Removes the directory; callers stop their servers first. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    rmSync(this.dir, { recursive: true, force: true });
    if (this.reaper.pid) {
      try {
        process.kill(this.reaper.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
