import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { App, KindsLoadOptions, KindsLoadResult } from './support.js';

const WORKER = new URL('./load-thread-worker.ts', import.meta.url).href;
// The thread loads TypeScript through tsx's ESM hooks, registered in the thread first.
const TSX = createRequire(import.meta.url)
  .resolve('tsx/esm/api')
  .replace(/index\.cjs$/, 'index.mjs');
const BOOT = new URL(
  `data:text/javascript,${encodeURIComponent(`
    import { register } from ${JSON.stringify(pathToFileURL(TSX).href)};
    register();
    await import(${JSON.stringify(WORKER)});
  `)}`,
);

/** What a load thread needs: the apps to call and {@link KindsLoadOptions} without functions. */
export interface ThreadLoadOptions extends Omit<KindsLoadOptions, 'app'> {
  /** Session `i` calls `apps[i % apps.length]`. */
  apps: readonly Pick<App, 'framework' | 'url'>[];
}

/**
 * {@link kindsLoad} on a thread of its own: the clients, their history checking and the
 * servers under test do not share one event loop, so the servers get a core's worth of
 * requests. `stop()` ends the run and returns what the thread observed.
 */
export function kindsLoadInThread(options: ThreadLoadOptions) {
  const worker = new Worker(BOOT, {
    workerData: {
      ...options,
      apps: options.apps.map(({ framework, url }) => ({ framework, url })),
    },
  });
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`load thread exited with ${code}`)));
  });
  // Reported only through stop(): a run that is never stopped must not reject unobserved.
  failed.catch(() => {});
  const result = new Promise<KindsLoadResult>((resolve) => {
    worker.on('message', (message: { result?: KindsLoadResult }) => {
      if (message.result) resolve(message.result);
    });
  });
  return {
    async stop(): Promise<KindsLoadResult> {
      worker.postMessage('stop');
      try {
        return await Promise.race([result, failed]);
      } finally {
        await worker.terminate();
      }
    },
  };
}
