/**
 * What starting one request costs, counted rather than timed: the async resources (promises,
 * timers, ticks) and the bytes a request start makes, through the adapter kit as the framework
 * adapters call it, on the build output. Counts do not move with the machine's load, so a change
 * of the hot path shows in them run after run where section 1's µs are within the noise. On
 * Node.js 20 each promise costs more while AsyncLocalStorage is in use (its promise hooks), which
 * is the case in every freshgate process.
 *
 * Run as a child of `bench:profile` with `--expose-gc` and a new space large enough that no
 * scavenge runs during a measured loop. Configuration: the `BENCH_START_COST` environment variable,
 * JSON of {@link StartCostConfig}; prints one JSON line, {@link StartCost}`[]`.
 */
import { createHook } from 'node:async_hooks';
import v8 from 'node:v8';
import { createAdapterKit } from '@freshgate/core/adapter';
import { createFreshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import pg from 'pg';
import { BENCH_SECRET, pinStoreRedis } from './redis-client.js';

/** What the parent passes. */
export interface StartCostConfig {
  primaryUrl: string;
  replicaUrl: string;
  redisUrl: string;
  /** A token of this cluster, made by another process. */
  token: string;
  /** A session key with a live pin in Redis. */
  session: string;
}

/** The cost of one request start in one mode. */
export interface StartCost {
  mode: 'none' | 'token' | 'session';
  /** Async resources made per start, by type (`PROMISE`, `Timeout`, `TickObject`, …). */
  resources: Record<string, number>;
  /** Bytes allocated per start; only for the modes that start synchronously (no I/O). */
  bytes: number | undefined;
}

const SESSION_HEADER = 'x-session';
const WARMUP = 2_000;
const COUNTED = 2_000;
const ALLOCATED = 10_000;

type Req = { headers: Record<string, string> };

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_START_COST ?? '') as StartCostConfig;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('start-cost needs node --expose-gc');
  const primary = new pg.Pool({ connectionString: config.primaryUrl });
  const replica = new pg.Pool({ connectionString: config.replicaUrl });
  primary.on('error', () => {});
  replica.on('error', () => {});
  const redis = pinStoreRedis(config.redisUrl);
  await redis.connect();
  const gate = await createFreshgate({
    primary,
    replicas: { r1: replica },
    secret: BENCH_SECRET,
    pinStore: redisPinStore(redis),
    // One poll at start: later ones would add their promises to the counts of the starts.
    monitor: { interval: '1h' },
  });
  try {
    await gate.start();
    const kit = createAdapterKit<Req, object, unknown>(
      gate,
      { sessionKey: (req: Req) => req.headers[SESSION_HEADER] },
      {
        name: 'start-cost',
        io: {
          headers: (req) => req.headers,
          secure: () => false,
          response: () => ({
            get: () => undefined,
            set: () => {},
            append: () => {},
            remove: () => {},
          }),
        },
      },
    );
    const res = {};
    // One start, settled: the callbacks take the resolver as `arg`, so the loop makes no
    // closure per start beyond the promise it awaits (subtracted below).
    const entered = (_started: unknown, _req: Req, done: (error?: unknown) => void) => done();
    const failed = (error: unknown, _req: Req, _res: object, done: (error?: unknown) => void) =>
      done(error ?? new Error('start failed'));
    const start = (req: Req) =>
      new Promise<void>((resolve, reject) =>
        kit.start(req, res, kit.defaultContract, entered, failed, (error?: unknown) =>
          error === undefined ? resolve() : reject(error),
        ),
      );
    const idle = () => new Promise<void>((resolve) => resolve());

    let counting = false;
    const made = new Map<string, number>();
    createHook({
      init(_id, type) {
        if (counting) made.set(type, (made.get(type) ?? 0) + 1);
      },
    }).enable();
    const count = async (f: () => Promise<void>) => {
      for (let i = 0; i < WARMUP; i++) await f();
      made.clear();
      counting = true;
      for (let i = 0; i < COUNTED; i++) await f();
      counting = false;
      return new Map([...made].map(([type, n]) => [type, n / COUNTED]));
    };
    // What the loop itself makes (its promise per start), taken from every mode's count.
    const harness = await count(idle);

    const newSpace = () =>
      v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_used_size ?? 0;
    // Synchronous starts only: nothing else runs between the two readings.
    const allocated = (req: Req) => {
      const noop = () => {};
      for (let i = 0; i < WARMUP; i++) kit.start(req, res, kit.defaultContract, noop, noop);
      gc();
      const before = newSpace();
      for (let i = 0; i < ALLOCATED; i++) kit.start(req, res, kit.defaultContract, noop, noop);
      return Math.round((newSpace() - before) / ALLOCATED);
    };

    const modes: { mode: StartCost['mode']; headers: Record<string, string>; sync: boolean }[] = [
      { mode: 'none', headers: {}, sync: true },
      { mode: 'token', headers: { 'x-freshness-token': config.token }, sync: true },
      { mode: 'session', headers: { [SESSION_HEADER]: config.session }, sync: false },
    ];
    const results: StartCost[] = [];
    for (const { mode, headers, sync } of modes) {
      const req = { headers };
      const counted = await count(() => start(req));
      const resources: Record<string, number> = {};
      for (const [type, n] of counted) {
        // To a tenth: the store's heartbeat (one per 100 ms) adds a few hundredths.
        const own = Math.round((n - (harness.get(type) ?? 0)) * 10) / 10;
        if (own > 0) resources[type] = own;
      }
      results.push({ mode, resources, bytes: sync ? allocated(req) : undefined });
    }
    console.log(JSON.stringify(results));
  } finally {
    await gate.close();
    redis.disconnect();
    await Promise.all([primary.end(), replica.end()]);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
