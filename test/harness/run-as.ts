import { execFileSync } from 'node:child_process';
import { chownSync, readFileSync } from 'node:fs';

/** The account servers run as: the current one, or an unprivileged one when we are root. */
export interface RunAs {
  uid: number | undefined;
  gid: number | undefined;
  user: string;
}

const CANDIDATES = ['postgres', 'nobody'];

let cached: RunAs | undefined;

/**
 * PostgreSQL refuses to run as root, so as root the harness runs every server as `postgres`
 * (or `nobody`) and hands it the temp directory.
 */
export function runAs(): RunAs {
  if (cached) return cached;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cached = { uid: undefined, gid: undefined, user: process.env.USER ?? 'current user' };
    return cached;
  }
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const name of CANDIDATES) {
    const line = passwd.find((l) => l.startsWith(`${name}:`));
    if (!line) continue;
    const [, , uid, gid] = line.split(':');
    cached = { uid: Number(uid), gid: Number(gid), user: name };
    return cached;
  }
  throw new Error(
    'Running as root and no unprivileged account (postgres, nobody) exists: create one with `useradd --system postgres`.',
  );
}

/** Gives a path to the server account (no-op when not root). */
export function handOver(path: string): void {
  const { uid, gid } = runAs();
  if (uid === undefined || gid === undefined) return;
  execFileSync('chown', ['-R', `${uid}:${gid}`, path]);
}

export function chownOne(path: string): void {
  const { uid, gid } = runAs();
  if (uid !== undefined && gid !== undefined) chownSync(path, uid, gid);
}
