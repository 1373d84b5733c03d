import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Pids of live PostgreSQL servers whose data directory is under `dir`. */
function postgresUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(`-D ${dir}/`)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

// `pnpm demo` as a user runs it in a terminal: Ctrl-C sends SIGINT to the whole foreground
// process group (pnpm, the shell, tsx, node). pnpm used to end with "Command failed with
// signal SIGINT" although every server had stopped.
describe('pnpm demo and Ctrl-C', () => {
  it('Ctrl-C stops every server, says "stopped" and exits with status 0', async () => {
    const child = spawn('pnpm', ['demo'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0' },
      // Its own process group, as a terminal's foreground job.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', (error) =>
          reject(new Error(`could not run \`pnpm demo\` (is pnpm on PATH?): ${error.message}`)),
        );
      },
    );
    try {
      const dataDir = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the demo did not start:\n${output.join('\n')}`)),
          50_000,
        );
        createInterface({ input: child.stdout! }).on('line', (line) => {
          output.push(line);
          const match = /data directories in (\S+)/.exec(line);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
        exited.then(() => reject(new Error(`the demo exited:\n${output.join('\n')}`)), reject);
      });
      expect(output.join('\n')).toMatch(/casebook is ready/);
      // A primary and two replicas.
      expect(postgresUnder(dataDir)).toHaveLength(3);

      process.kill(-child.pid!, 'SIGINT');
      const { code, signal } = await exited;
      const text = output.join('\n');
      expect({ code, signal }, text).toEqual({ code: 0, signal: null });
      expect(text).not.toMatch(/ERR_PNPM|ELIFECYCLE|Command failed/);
      expect(output.filter((line) => line.trim() !== '').at(-1)).toBe('stopped');
      // No PostgreSQL process of the demo is left, and its data directories are gone.
      expect(postgresUnder(dataDir)).toEqual([]);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid, 'SIGKILL');
      }
    }
  }, 90_000);
});
