import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { runAs } from './run-as.js';
import type { Workspace } from './workspace.js';

/** One long-running server process, started as the server account, logging to a file. */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor(
    private readonly workspace: Workspace,
    private readonly command: string,
    private readonly args: () => string[],
    readonly logFile: string,
    private readonly reapSignal: NodeJS.Signals,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  start(): void {
    if (this.child) return;
    const { uid, gid } = runAs();
    const log = openSync(this.logFile, 'a');
    const child = spawn(this.command, this.args(), {
      stdio: ['ignore', log, log],
      uid,
      gid,
      // Own process group: a Ctrl-C meant for the test runner must not stop servers before
      // the harness has decided to.
      detached: true,
    });
    closeSync(log);
    child.unref();
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    if (child.pid) this.workspace.register(child.pid, this.reapSignal);
  }

  /** Sends a signal and waits for the process to exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}
