#!/usr/bin/env -S node --import tsx
// freshgate-harness: start a throwaway cluster from a shell.
//
//   freshgate-harness start [--replicas N] [--redis]
//
// Prints one JSON line describing the cluster once it is ready, then keeps it running until
// SIGINT/SIGTERM (or until this process dies: the workspace reaper cleans up then, too).
import { parseArgs } from 'node:util';
import { type Cluster, startCluster } from './cluster.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    replicas: { type: 'string', default: '2' },
    redis: { type: 'boolean', default: false },
  },
});

if (positionals[0] !== 'start') {
  console.error('usage: freshgate-harness start [--replicas N] [--redis]');
  process.exit(2);
}

let stopping = false;
let cluster: Cluster | undefined;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await cluster?.stop();
  clearInterval(keepAlive);
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
// Server processes are unref'd; this keeps the CLI (and so the cluster) alive until a signal.
const keepAlive = setInterval(() => {}, 60_000);

const started = Date.now();
cluster = await startCluster({ replicas: Number(values.replicas), redis: values.redis });
if (stopping) await cluster.stop();
console.log(
  JSON.stringify({ ...cluster.describe(), pids: cluster.pids(), readyMs: Date.now() - started }),
);
