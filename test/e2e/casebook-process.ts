import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Cluster } from '../harness/index.js';

const MAIN = new URL('../../apps/casebook/src/main.ts', import.meta.url).pathname;

/** A casebook server in a child process, as `pnpm --filter casebook start` runs it. */
export interface CasebookProcess {
  url: string;
  output: string[];
  stop(): Promise<void>;
}

/** Starts casebook against a harness cluster; resolves once it listens. */
export async function startCasebook(
  cluster: Cluster,
  env: Record<string, string | undefined>,
): Promise<CasebookProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: new URL('../../apps/casebook/', import.meta.url).pathname,
    env: {
      ...process.env,
      DATABASE_PRIMARY_URL: cluster.primary.url,
      DATABASE_REPLICA_URLS: cluster.replicas.map((r) => `${r.name}=${r.url}`).join(','),
      FRESHGATE_SECRET: 'casebook-e2e-secret-0123456789abcdef',
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`casebook did not start:\n${output.join('\n')}`)),
      30_000,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const match = /listening on (http:\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`casebook exited (${code}):\n${output.join('\n')}`));
    });
  });
  return {
    url,
    output,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
