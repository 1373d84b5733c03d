import type { AddressInfo } from 'node:net';
import { type Casebook, openCasebook } from './casebook.js';
import type { CasebookConfig } from './config.js';
import { dashboardAssets } from './dashboard-bundle.js';
import { expressApp } from './express-app.js';
import { fastifyApp } from './fastify-app.js';

/** A running casebook: its URL and how to stop it. */
export interface RunningCasebook {
  url: string;
  casebook: Casebook;
  close(): Promise<void>;
}

/** Opens the databases and serves the API and the dashboard with the configured framework. */
export async function startServer(config: CasebookConfig): Promise<RunningCasebook> {
  const casebook = await openCasebook(config);
  const assets = await dashboardAssets();
  if (config.framework === 'fastify') {
    const app = await fastifyApp(casebook, assets);
    await app.listen({ port: config.port, host: config.host });
    const { port } = app.server.address() as AddressInfo;
    return {
      url: `http://${config.host}:${port}`,
      casebook,
      async close() {
        await app.close();
        await casebook.close();
      },
    };
  }
  const app = expressApp(casebook, assets);
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, (error?: Error) =>
      error ? reject(error) : resolve(s),
    );
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.host}:${port}`,
    casebook,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await casebook.close();
    },
  };
}
