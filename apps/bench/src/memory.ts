/**
 * `pnpm --filter bench bench:memory`: the heap a one-SELECT read costs, bare `pg.Pool`, with the
 * floor (AsyncLocalStorage around the read) and through freshgate's `req.db` (no token, the
 * default contract; built output). Two figures per variant, each in a process of its own and
 * the median of three: the bytes one read allocates (reads one after another, no collection in
 * between), and the bytes one read keeps alive while it waits for a connection (the pool's one
 * connection held, every read queued). Under load the second, times the reads waiting, is what
 * each young-generation collection copies; the first sets how often one runs
 * (docs/operations.md). Runs the servers' Node.js and, with `BENCH_NODE`, that one too.
 * Prints a table and writes `results/memory.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines, spawnTs } from './child.js';
import { startBenchCluster } from './fixture.js';
import type { MemoryChildConfig, MemoryChildResult } from './memory-child.js';
import { median } from './stats.js';

const APP_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(APP_DIR, 'results', 'memory.json');
const VARIANTS: MemoryChildConfig['variant'][] = ['bare', 'floor', 'freshgate'];
const ROUNDS = 3;
const READS = Number(process.env.MEMORY_READS ?? 3_000);
/** A young generation no run of `READS` reads fills: no collection while allocation is counted. */
const NODE_FLAGS = ['--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256'];

function runChild(config: MemoryChildConfig, node: string | undefined): Promise<MemoryChildResult> {
  const child = spawnTs('./memory-child.ts', { BENCH_MEMORY: JSON.stringify(config) }, [], {
    built: true,
    node,
    nodeFlags: NODE_FLAGS,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    let result: MemoryChildResult | undefined;
    lines(child.stdout, (line) => {
      if (line.startsWith('{')) result = JSON.parse(line) as MemoryChildResult;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`memory-child.ts (${config.variant}) exited ${code}:\n${stderr}`));
    });
  });
}

const cluster = await startBenchCluster(1_000);
const rows: {
  node: string;
  variant: string;
  allocated: number;
  retained: number;
  collections: number;
}[] = [];
try {
  const nodes = [undefined, ...(process.env.BENCH_NODE ? [process.env.BENCH_NODE] : [])];
  for (const node of nodes) {
    const results = new Map<string, MemoryChildResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const config: MemoryChildConfig = {
          variant,
          primaryUrl: cluster.primary.url,
          replicaUrl: cluster.replica('r1').url,
          reads: READS,
        };
        const result = await runChild(config, node ?? process.execPath);
        (results.get(variant) ?? results.set(variant, []).get(variant)!).push(result);
      }
    }
    for (const variant of VARIANTS) {
      const list = results.get(variant) ?? [];
      rows.push({
        node: list[0]?.node ?? '?',
        variant,
        allocated: median(list.map((r) => r.allocatedBytesPerRead)),
        retained: median(list.map((r) => r.retainedBytesPerQueuedRead)),
        collections: Math.max(...list.map((r) => r.collections)),
      });
    }
  }
} finally {
  await cluster.stop();
}

const out = [
  '| Node.js | variant | allocated per read (bytes) | kept alive per queued read (bytes) |',
  '| --- | --- | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.node} | ${r.variant} | ${Math.round(r.allocated)}${r.collections > 0 ? ` (${r.collections} collections ran: too low)` : ''} | ${Math.round(r.retained)} |`,
  ),
];
console.log(out.join('\n'));
mkdirSync(dirname(RESULTS), { recursive: true });
writeFileSync(RESULTS, `${JSON.stringify({ reads: READS, rounds: ROUNDS, rows }, null, 2)}\n`);
