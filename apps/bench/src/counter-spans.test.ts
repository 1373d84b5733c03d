import { type Cluster, redisCommand, startCluster } from '@freshgate/harness';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CounterSpans } from './counter-spans.js';
import { measurementRedis } from './redis-client.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function getCalls(redis: Redis): Promise<{ gets: number }> {
  const info = await redis.info('commandstats');
  return { gets: Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0) };
}

// The overhead section samples Redis counters while its load runs and reads them after the
// load generator exits. On a busy machine Redis (or this process) can stall past a 50 ms
// command timeout: such a sample used to reject with nobody listening until the end of the
// plan, an unhandled rejection that failed the run.
describe('bench counter sampling while Redis stalls (CLIENT PAUSE)', () => {
  let cluster: Cluster;
  const clients: Redis[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 0, redis: true });
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
    unhandled.length = 0;
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await cluster?.stop();
  });

  async function connect(make: (url: string) => Redis): Promise<Redis> {
    const client = make(cluster.redisUrl);
    clients.push(client);
    await client.connect();
    return client;
  }

  // A client that gives up after 50 ms: a sample that times out must not be left unhandled.
  const impatient = (url: string) => {
    const client = new Redis(url, {
      commandTimeout: 50,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    client.on('error', () => {});
    return client;
  };

  it('a sample that times out mid-run is thrown when the span is read, never left unhandled', async () => {
    const redis = await connect(impatient);
    const spans = new CounterSpans(() => getCalls(redis));
    spans.start('warm');
    spans.end('warm');
    await expect(spans.delta('warm')).resolves.toEqual({ gets: 0 });

    expect(await redisCommand(cluster.redis!.port, 'CLIENT PAUSE 400 ALL')).toBe('+OK');
    spans.start('stalled');
    // The load runs on; the rejected sample waits here, well past its 50 ms timeout.
    await sleep(700);
    spans.end('stalled');
    await expect(spans.delta('stalled')).rejects.toThrow('Command timed out');
    expect(await spans.delta('never-marked')).toBeUndefined();
    // Node reports an unhandled rejection after a microtask turn; 700 ms is far past that.
    expect(unhandled).toEqual([]);
  });

  it("the harness's measurement client waits out a stall longer than the pin store's timeout", async () => {
    const redis = await connect(measurementRedis);
    const spans = new CounterSpans(() => getCalls(redis));
    expect(await redisCommand(cluster.redis!.port, 'CLIENT PAUSE 300 ALL')).toBe('+OK');
    spans.start('run');
    await redis.get('freshgate:bench:counted');
    spans.end('run');
    await expect(spans.delta('run')).resolves.toEqual({ gets: 1 });
    expect(unhandled).toEqual([]);
  });
});
