import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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

/**
 * A free loopback port for a server, below the kernel's ephemeral range so that no client
 * connection can take it before (or while) the server listens. With `alsoFree`, the port
 * `port + alsoFree` is free and below the range too (Redis Cluster's bus port).
 */
export async function freePort(alsoFree = 0): Promise<number> {
  const high = ephemeralLow() - alsoFree;
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = await probe(LOWEST + Math.floor(Math.random() * (high - LOWEST)));
    if (port === null) continue;
    if (alsoFree === 0 || (await probe(port + alsoFree)) !== null) return port;
  }
  const port = await probe(0);
  if (port === null) throw new Error('no free loopback port');
  return port;
}
