import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { freePort, RESERVATIONS, reservePort } from './ports.js';

const PORTS = new URL('./ports.ts', import.meta.url).pathname;

/** Another process that takes a port with `freePort` and prints it, then waits for stdin. */
async function holderProcess(): Promise<{ child: ChildProcess; port: number }> {
  const script = `const { freePort } = await import(${JSON.stringify(PORTS)});
    console.log(await freePort());
    process.stdin.on('data', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`port holder exited early (${code})`)));
  });
  return { child, port: Number(line) };
}

function exited(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve) => child.once('exit', resolve));
}

describe('freePort', () => {
  it('reserves what it hands out, so no other process gets the port while this one lives', async () => {
    const port = await freePort();
    expect(readFileSync(join(RESERVATIONS, String(port)), 'utf8')).toBe(String(process.pid));
    // Nothing listens on it yet; a probe alone would hand it out again.
    expect(reservePort(port)).toBe(false);

    const { child, port: theirs } = await holderProcess();
    try {
      expect(theirs).not.toBe(port);
      expect(reservePort(theirs)).toBe(false);
    } finally {
      const gone = exited(child);
      child.stdin!.end('exit\n');
      await gone;
    }
    // The holder exited normally: its reservation went with it.
    expect(existsSync(join(RESERVATIONS, String(theirs)))).toBe(false);
  });

  it("takes over a dead process's reservations", async () => {
    const { child, port } = await holderProcess();
    const gone = exited(child);
    child.kill('SIGKILL');
    await gone;
    // SIGKILL runs no exit handler: the file stays, naming a pid that no longer runs.
    expect(existsSync(join(RESERVATIONS, String(port)))).toBe(true);
    expect(reservePort(port)).toBe(true);
    expect(readFileSync(join(RESERVATIONS, String(port)), 'utf8')).toBe(String(process.pid));
  });
});
