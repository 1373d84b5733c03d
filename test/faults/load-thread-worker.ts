// The body of a load thread (see load-thread.ts): runs kindsLoad until told to stop.
import { parentPort, workerData } from 'node:worker_threads';
import type { ThreadLoadOptions } from './load-thread.js';
import { type App, kindsLoad } from './support.js';

const { apps, ...options } = workerData as ThreadLoadOptions;
const load = kindsLoad({
  ...options,
  app: (i) => apps[i % apps.length] as App,
});
parentPort?.once('message', async () => {
  parentPort?.postMessage({ result: await load.stop() });
});
