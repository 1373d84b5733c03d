// `pnpm --filter casebook start`: serve casebook against the databases in the environment.
import { readConfig } from './config.js';
import { startServer } from './server.js';

// Refuses to start without FRESHGATE_SECRET: there is no built-in secret to fall back to.
const config = readConfig();
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
