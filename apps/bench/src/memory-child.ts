/**
 * One variant of `bench:memory`, in a process of its own (started by `memory.ts` with
 * `--expose-gc` and a young generation large enough that no collection runs while reads are
 * counted). Prints one JSON line: the heap bytes one read allocates, and the heap bytes one read
 * keeps alive while it waits for a connection.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import { createFreshgate } from '@freshgate/pg';
import pg from 'pg';
import { ITEM_SQL } from './item-sql.js';
import { BENCH_SECRET } from './redis-client.js';

/** What `memory.ts` passes in `BENCH_MEMORY`. */
export interface MemoryChildConfig {
  variant: 'bare' | 'floor' | 'freshgate';
  primaryUrl: string;
  replicaUrl: string;
  /** Reads counted per measurement. */
  reads: number;
}

/** What the child prints. */
export interface MemoryChildResult {
  variant: MemoryChildConfig['variant'];
  node: string;
  allocatedBytesPerRead: number;
  /** Collections that ran while allocation was counted (0, or the figure is too low). */
  collections: number;
  retainedBytesPerQueuedRead: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('memory-child.ts needs node --expose-gc');

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_MEMORY ?? '') as MemoryChildConfig;
  const primary = new pg.Pool({ connectionString: config.primaryUrl });
  // One connection: holding it makes every read queue, as under load with every connection busy.
  const replica = new pg.Pool({ connectionString: config.replicaUrl, max: 1 });
  primary.on('error', () => {});
  replica.on('error', () => {});
  const gate = await createFreshgate({ primary, replicas: { r1: replica }, secret: BENCH_SECRET });
  await gate.start();
  // The floor's context: one store per request, as section 1's floor.
  const context = new AsyncLocalStorage<{ token: string | undefined }>();
  const sink = { setHeader() {} };
  const contract = gate.engine.defaultContract;
  const read = (id: number): Promise<unknown> => {
    if (config.variant === 'bare') return replica.query(ITEM_SQL, [id]);
    if (config.variant === 'floor') {
      return context.run({ token: undefined }, () => replica.query(ITEM_SQL, [id]));
    }
    const started = gate.begin({ contract, sink });
    if (started instanceof Promise) throw new Error('a request without token started async');
    return started.run(() => started.db.query(ITEM_SQL, [id]));
  };

  let collections = 0;
  new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  }).observe({ entryTypes: ['gc'] });
  // Warm-up: the code is optimized and the pools' connections are open.
  for (let i = 0; i < 3_000; i++) await read((i % 1_000) + 1);

  // Allocation: reads one after another; no collection runs in between (checked).
  await settle();
  const seen = collections;
  let before = process.memoryUsage().heapUsed;
  for (let i = 0; i < config.reads; i++) await read((i % 1_000) + 1);
  const allocated = (process.memoryUsage().heapUsed - before) / config.reads;
  const during = collections - seen;

  // Retention: every read waits for the one connection, held here.
  const held = await replica.connect();
  await settle();
  before = process.memoryUsage().heapUsed;
  const waiting: Promise<unknown>[] = [];
  for (let i = 0; i < config.reads; i++) waiting.push(read((i % 1_000) + 1));
  await settle();
  const retained = (process.memoryUsage().heapUsed - before) / config.reads;
  held.release();
  await Promise.all(waiting);

  const result: MemoryChildResult = {
    variant: config.variant,
    node: process.versions.node,
    allocatedBytesPerRead: allocated,
    collections: during,
    retainedBytesPerQueuedRead: retained,
  };
  console.log(JSON.stringify(result));
  await gate.close();
  await Promise.all([primary.end(), replica.end()]);
}

await main();
