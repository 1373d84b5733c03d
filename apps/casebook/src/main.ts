// `pnpm --filter casebook start`: serve casebook against the databases in the environment.
import { DEMO_SECRET, readConfig } from './config.js';
import { startServer } from './server.js';

const config = readConfig();
if (config.secret === DEMO_SECRET)
  console.warn('FRESHGATE_SECRET is not set: using the demo secret');
const running = await startServer(config);
console.log(`casebook (${config.framework}) listening on ${running.url}`);

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (closing) return;
    closing = true;
    await running.close();
    process.exit(0);
  });
}
