import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The kernel hands out ports of its ephemeral range to outgoing connections too. A server
// port taken from that range (listen on port 0) can be grabbed by any client socket between
// the probe and the server's bind, or while a server is down for a restart on the same port:
// "Address already in use". Ports below the range are only ever taken by other listeners.
const FALLBACK_EPHEMERAL_LOW = 32_768;
const LOWEST = 10_000;
const ATTEMPTS = 100;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return low !== undefined && Number.isInteger(low) && low > LOWEST + 1_000
      ? low
      : FALLBACK_EPHEMERAL_LOW;
  } catch {
    return FALLBACK_EPHEMERAL_LOW;
  }
}

// A probe only says the port is free now. Test files run in parallel processes, and a server
// binds its port well after the probe (a cluster probes every node's port before starting
// any) or leaves it free while it is down for a restart: another process's probe finds it
// free then, and one of the two servers fails "Address already in use". So every port handed
// out is also reserved, across processes, for the life of the process that took it: a file
// named after the port, created exclusively, holding the owner's pid. A dead owner's
// reservations are taken over.
export const RESERVATIONS = join(tmpdir(), 'freshgate-harness-ports');
const held = new Set<string>();
let prepared = false;

/** Whether a process with this pid runs (one of another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function create(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Removes `file` when the process it names has ended; true when removed. Under a lock, with
 * the owner read again inside it: two processes that both found the same orphan must not
 * both remove it, or the second would remove the reservation a third made in between. (A lock
 * left by a crash in those microseconds only costs that one port.)
 */
function removeIfOrphaned(file: string): boolean {
  const lock = `${file}.lock`;
  try {
    closeSync(openSync(lock, 'wx'));
  } catch {
    return false;
  }
  try {
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {}
    // An empty file is a reservation being written right now.
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) return false;
    unlinkSync(file);
    return true;
  } catch {
    return false;
  } finally {
    unlinkSync(lock);
  }
}

/** Reserves `port` for this process; false when a live process holds it. */
export function reservePort(port: number): boolean {
  if (!prepared) {
    prepared = true;
    mkdirSync(RESERVATIONS, { recursive: true });
    // Processes ended by a signal (test workers are) leave their reservations behind.
    for (const name of readdirSync(RESERVATIONS)) {
      if (/^\d+$/.test(name)) removeIfOrphaned(join(RESERVATIONS, name));
    }
    process.once('exit', () => {
      for (const f of held) {
        try {
          unlinkSync(f);
        } catch {}
      }
    });
  }
  const file = join(RESERVATIONS, String(port));
  if (!create(file) && !(removeIfOrphaned(file) && create(file))) return false;
  held.add(file);
  return true;
}

function release(port: number): void {
  const file = join(RESERVATIONS, String(port));
  if (!held.delete(file)) return;
  try {
    unlinkSync(file);
  } catch {}
}

/** Listens on `port` (0: any) on loopback, then closes; resolves the port, or null when taken. */
function probe(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(address && typeof address === 'object' ? address.port : null));
    });
  });
}

/** Reserves `port` and checks that nothing listens on it; releases it again when taken. */
async function take(port: number): Promise<boolean> {
  if (!reservePort(port)) return false;
  if ((await probe(port)) !== null) return true;
  release(port);
  return false;
}

/**
 * A free loopback port for a server, below the kernel's ephemeral range so that no client
 * connection can take it before (or while) the server listens, and reserved for this process
 * so that no other `freePort` hands it out while this process lives. With `alsoFree`, the port
 * `port + alsoFree` is free, reserved and below the range too (Redis Cluster's bus port).
 */
export async function freePort(alsoFree = 0): Promise<number> {
  const high = ephemeralLow() - alsoFree;
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
    if (!(await take(port))) continue;
    if (alsoFree === 0 || (await take(port + alsoFree))) return port;
    release(port);
  }
  throw new Error(`no free loopback port between ${LOWEST} and ${high} in ${ATTEMPTS} tries`);
}
