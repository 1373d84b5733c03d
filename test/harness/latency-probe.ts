import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One statement of a {@link LatencyProbe}: when it ended (`performance.now()`), how long it took. */
export interface ProbeSample {
  at: number;
  ms: number;
}

const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
const client = new pg.Client({ connectionString: workerData.url });
client.on('error', () => {});
let running = true;
parentPort.on('message', () => { running = false; });
(async () => {
  try {
    await client.connect();
    while (running) {
      const start = performance.now();
      try {
        await client.query(workerData.sql);
        parentPort.postMessage([performance.timeOrigin + performance.now(), performance.now() - start]);
      } catch {
        parentPort.postMessage([performance.timeOrigin + performance.now(), -1]);
      }
      await new Promise((resolve) => setTimeout(resolve, workerData.intervalMs));
    }
  } finally {
    await client.end().catch(() => {});
  }
})();
`;

/**
 * Times one small statement against a PostgreSQL server, again and again, on its own thread
 * and connection: the latency any client of that server sees, untouched by the event-loop
 * delay of the process under test (its CPU use still counts, as on any shared machine).
 *
 * @example
 * ```ts
 * const probe = LatencyProbe.start(cluster.primary.url);
 * await sleep(2_000);
 * const p99 = LatencyProbe.p99(probe.take());
 * await probe.stop();
 * ```
 */
export class LatencyProbe {
  readonly #worker: Worker;
  #samples: ProbeSample[] = [];
  /** Statements that failed (the server was down or refused them). */
  failures = 0;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', ([epochMs, ms]: [number, number]) => {
      const at = epochMs - performance.timeOrigin;
      if (ms < 0) this.failures++;
      else this.#samples.push({ at, ms });
    });
    worker.on('error', () => {});
  }

  /** Starts timing `sql` (default `SELECT 1`) on `url` with a pause of `intervalMs` between statements. */
  static start(url: string, options: { sql?: string; intervalMs?: number } = {}): LatencyProbe {
    const pg = createRequire(import.meta.url).resolve('pg');
    return new LatencyProbe(
      new Worker(PROBE, {
        eval: true,
        workerData: {
          pg,
          url,
          sql: options.sql ?? 'SELECT 1',
          intervalMs: options.intervalMs ?? 5,
        },
      }),
    );
  }

  /** The samples since the last `take()`. */
  take(): ProbeSample[] {
    const samples = this.#samples;
    this.#samples = [];
    return samples;
  }

  /** The 99th percentile of `samples`' latencies, ms (0 for none). */
  static p99(samples: readonly ProbeSample[]): number {
    if (samples.length === 0) return 0;
    const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage('stop');
    const timer = setTimeout(() => void this.#worker.terminate(), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
