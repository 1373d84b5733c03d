import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { ClusterDescriptor } from './index.js';
import { waitFor } from './index.js';
import { processAlive as alive } from './ports.js';

const CLI = new URL('./cli.ts', import.meta.url).pathname;

/** Starts the CLI in a child process and resolves with what it printed once ready. */
async function startInChild(): Promise<{
  child: ChildProcess;
  ready: ClusterDescriptor & { pids: number[] };
}> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'start', '--replicas', '1', '--redis'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`harness CLI exited early (${code})`)));
  });
  return { child, ready: JSON.parse(first) };
}

async function expectGone(ready: { dir: string; pids: number[] }): Promise<void> {
  await waitFor(
    'every server and the temp dir to disappear',
    () => (ready.pids.some(alive) || existsSync(ready.dir) ? undefined : true),
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

describe('teardown', () => {
  it('leaves no server and no temp dir when the process that started them is killed with SIGKILL', async () => {
    const { child, ready } = await startInChild();
    expect(ready.pids).toHaveLength(3);
    expect(ready.pids.every(alive)).toBe(true);
    expect(existsSync(ready.dir)).toBe(true);
    child.kill('SIGKILL');
    await expectGone(ready);
  });

  it('stops every server and removes the temp dir on SIGINT', async () => {
    const { child, ready } = await startInChild();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(ready.pids.some(alive)).toBe(false);
    expect(existsSync(ready.dir)).toBe(false);
  });
});
