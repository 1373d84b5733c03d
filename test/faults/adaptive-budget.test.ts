import { memoryPinStore } from '@freshgate/core';
import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CapacityProxy, type Cluster, LatencyProbe, startCluster } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import { kindsLoadInThread } from './load-thread.js';
import {
  type App,
  CLIENT_KINDS,
  type KindsLoadResult,
  kindsLoad,
  lagStorm,
  SCHEMA,
  sleep,
  startApps,
} from './support.js';

// The adaptive primary budget with its defaults, under the lag storms of the degraded-modes
// suite at the highest rate this machine gives (both apps, the databases and the load share
// its cores). The small primary is the same one behind a proxy of limited capacity: at most N
// statements a second, the rest queued, as on a saturated server.
const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 500,
  breaker: { open: 200, maxOpen: 1_000 },
  health: { exitLag: 1_000, exitFor: 300, enterLag: 400, enterFor: 1_000 },
};

const p99 = LatencyProbe.p99;
/** Statements a second the small primary passes (the proxy queues the rest). */
const SMALL_CAPACITY = 700;
/**
 * Event-loop utilization of this process (the apps, the engine and the clients) over the
 * spike's first second above which neither that fallbacks were shed nor the order of the first
 * shed and the first slow window is asserted: a saturated process measures its own queue, not
 * the primary's, and asks the primary only for what it can serve.
 */
const SATURATED = 0.8;

function summary(result: KindsLoadResult): string {
  return (
    `${result.requests} requests in ${result.seconds.toFixed(1)} s (${(result.requests / result.seconds).toFixed(0)} req/s), ` +
    `${result.report.reads} reads checked, ${result.report.writes} writes, ${result.primaryReads} primary reads, ` +
    `${result.fiveHundreds.length} 5xx; ${CLIENT_KINDS.map((k) => `${k}: ${result.reads[k]} reads`).join(', ')}`
  );
}

describe('adaptive primary budget (Express and Fastify on one engine)', () => {
  let cluster: Cluster;
  let freshgate: Freshgate | undefined;
  let apps: App[] = [];
  let small: CapacityProxy | undefined;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
  });

  /** One engine with an adaptive budget (default settings), both apps on it, the primary at `url`. */
  async function serve(url: string, budget: FreshgateOptions['budget'] = {}) {
    freshgate = await freshgateFor(cluster, {
      primary: url,
      monitor: MONITOR,
      pinStore: memoryPinStore(),
      cookie: true,
      budget,
    });
    await untilHealthy(freshgate);
    apps = await startApps(freshgate);
    return freshgate;
  }

  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()));
    apps = [];
    await freshgate?.close();
    freshgate = undefined;
    await small?.close();
    small = undefined;
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('lag storms at the full rate the machine gives (600 to 1700 req/s seen): 0 stale reads, 0 5xx, the primary within 2× its latency without them', async () => {
    const freshgate = await serve(cluster.primary.url);
    const probe = LatencyProbe.start(cluster.primary.url);
    await sleep(1_500);
    const idle = p99(probe.take());
    // The clients run on a thread of their own, so that the apps get a core: 600 to 1700 req/s
    // on two cores, as busy as the machine is (the apps, the clients and the databases share them).
    const load = kindsLoadInThread({ apps, sessionsPerKind: 16, thinkMs: 10 });
    await sleep(3_000);
    // The same load with healthy replicas: what the primary's latency is on this machine
    // while it runs (the load, the apps and the databases share two cores).
    const calm = p99(probe.take());
    const stopStorm = lagStorm(cluster.replica('r1'), cluster.replica('r2'), { both: true });
    await sleep(12_000);
    const stormy = probe.take();
    const result = await load.stop();
    await stopStorm();
    await probe.stop();
    const budget = freshgate.status().budget;
    console.info(
      `[lag storms, adaptive budget] ${summary(result)}; primary p99: idle ${idle.toFixed(2)} ms, same load without storms ${calm.toFixed(2)} ms, with storms ${p99(stormy).toFixed(2)} ms; budget ${JSON.stringify(budget)}`,
    );
    expect(result.report.examples).toEqual([]);
    expect(result.report.readYourWritesViolations + result.report.monotonicViolations).toBe(0);
    expect(result.fiveHundreds.slice(0, 5)).toEqual([]);
    for (const kind of CLIENT_KINDS) expect(result.reads[kind]).toBeGreaterThan(100);
    // The fallbacks of the storms did not slow the primary beyond twice what the same load
    // costs it without them (1 ms of slack: sub-millisecond latencies on a shared machine).
    expect(p99(stormy)).toBeLessThanOrEqual(2 * calm + 1);
  }, 60_000);

  it('a lag spike on a primary of small capacity: the limit follows the primary, fallbacks are shed with 503 + Retry-After, writes keep succeeding', async () => {
    const proxy = await CapacityProxy.start(
      { host: cluster.primary.host, port: cluster.primary.port },
      SMALL_CAPACITY,
    );
    small = proxy;
    const url = new URL(cluster.primary.url);
    url.port = String(proxy.port);
    // A floor below the fixed rate (the default floor), a start below it and a tighter
    // tolerance: this primary may not take 200 reads a second on top of its writes, and runs
    // close to its capacity already. The limit grows from there only while the primary keeps
    // its latency.
    const freshgate = await serve(url.toString(), { floor: 20, initial: 50, tolerance: 1.5 });
    // Its latency, as its clients see it: the time a statement takes on the idle server, plus
    // the time it waits in the server's queue (measured by the proxy, on its own thread).
    const probe = LatencyProbe.start(url.toString(), { intervalMs: 10 });
    await sleep(1_000);
    const service = p99(probe.take());
    await probe.stop();
    // Clients that honour Retry-After: a refused read does not turn into more writes at once.
    const load = kindsLoad({
      app: (i) => apps[i % apps.length]!,
      sessionsPerKind: 12,
      thinkMs: 20,
      retryAfterMs: 1_000,
    });
    // Its baseline: under the application's normal traffic.
    await sleep(1_000);
    await proxy.takeWaits();
    await sleep(3_000);
    const baseline = service + p99(await proxy.takeWaits());
    // The spike: both replicas stop replaying, and every read that needs a fresh answer
    // wants the primary at once.
    const shedBefore = freshgate.status().budget.shed;
    const shedCount = () => {
      const { normal, low } = freshgate.status().budget.shed;
      return normal + low - shedBefore.normal - shedBefore.low;
    };
    const limits: number[] = [];
    const watch = setInterval(
      () => limits.push(Math.round(freshgate.status().budget.limit ?? 0)),
      500,
    );
    // When the first fallback was shed, to 10 ms.
    let firstShedAt = Number.POSITIVE_INFINITY;
    const shedWatch = setInterval(() => {
      if (firstShedAt === Number.POSITIVE_INFINITY && shedCount() > 0)
        firstShedAt = performance.now();
    }, 10);
    await Promise.all(cluster.replicas.map((r) => r.pause()));
    const spikeAt = performance.now();
    const loopBefore = performance.eventLoopUtilization();
    await sleep(1_000);
    const busyFirstSecond = performance.eventLoopUtilization(loopBefore).utilization;
    await sleep(5_000);
    clearInterval(watch);
    clearInterval(shedWatch);
    const waits = await proxy.takeWaits();
    await Promise.all(cluster.replicas.map((r) => r.resume()));
    const result = await load.stop();
    const windows: number[] = [];
    for (let t = spikeAt; t + 1_000 <= spikeAt + 6_000; t += 1_000) {
      windows.push(service + p99(waits.filter((x) => x.at >= t && x.at < t + 1_000)));
    }
    const budget = freshgate.status().budget;
    const shed = shedCount();
    const failedWrites = result.fiveHundreds.filter((f) => f.includes(' POST '));
    // 3× the baseline, and 1 ms of slack for timer granularity.
    const bound = 3 * baseline + 1;
    console.info(
      `[lag spike, small primary, adaptive budget] ${summary(result)}; primary p99 baseline ${baseline.toFixed(2)} ms (idle ${service.toFixed(2)} ms + queue; bound ${bound.toFixed(1)} ms), each second of the spike: ${windows.map((w) => w.toFixed(1)).join(' ')}; ${shed} fallbacks shed; limit every 0.5 s: ${limits.join(' ')}; budget ${JSON.stringify(budget)}`,
    );
    expect(result.report.examples).toEqual([]);
    // Reads were refused as documented: 503 problem+json with Retry-After, nothing else. That
    // some were refused at all is asserted while this process had room (see SATURATED):
    // saturated, it cannot ask the primary for more than it serves, and the limit rightly grows
    // past what it asks (seen beside a CPU hog: 122 fallbacks a second asked, the limit 202).
    if (busyFirstSecond < SATURATED) expect(shed).toBeGreaterThan(0);
    expect(result.fiveHundreds.filter((f) => !f.includes('(documented)')).slice(0, 5)).toEqual([]);
    expect(failedWrites.slice(0, 5)).toEqual([]);
    expect(result.report.writes).toBeGreaterThan(100);
    // The limit moved with the primary: up from its start while the primary kept its latency,
    // down when its queue made it slower. (How far the load takes the primary depends on the
    // machine: beside other work it may stay within reach, and the limit only grows.)
    const grew = limits.some((l) => l > 50);
    const cut = limits.some((l, i) => i > 0 && l < limits[i - 1]!);
    expect(grew || cut, `limit every 0.5 s: ${limits.join(' ')}`).toBe(true);
    console.info(`[lag spike] the limit grew: ${grew}, was cut: ${cut}`);
    // When the first fallback was shed, and when the primary's p99 first passed 3× its
    // baseline: the p99 of each 250 ms window from the spike on, known when the window closes.
    // The first window is left out: it holds the burst the bucket lets through at once by
    // design (2 s of the limit), before the budget has a verdict on the spike (one per 250 ms
    // window). Beside a CPU hog that burst alone put one window over 3× (once in 4 runs on
    // the same code, with no second over 3×).
    let crossedAt = Number.POSITIVE_INFINITY;
    for (let t = spikeAt + 250; t + 250 <= spikeAt + 6_000; t += 250) {
      const window = waits.filter((x) => x.at >= t && x.at < t + 250);
      if (window.length > 0 && service + p99(window) > bound) {
        crossedAt = t + 250;
        break;
      }
    }
    console.info(
      `[lag spike] first fallback shed ${(firstShedAt - spikeAt).toFixed(0)} ms after the replicas paused; first 250 ms window over 3× the baseline (after the burst's own) closed ${crossedAt === Number.POSITIVE_INFINITY ? 'never' : `${(crossedAt - spikeAt).toFixed(0)} ms after`}; seconds over 3× the baseline: ${windows.filter((w) => w > bound).length} of ${windows.length}; event-loop utilization in the first second ${busyFirstSecond.toFixed(2)}`,
    );
    // If the primary's p99 passed 3× its baseline, fallbacks were shed before. Asserted while
    // this process had room (< 80 % busy in the spike's first second): saturated, it sees its
    // own queue in every latency and cannot tell the primary's (the one run in which the order
    // was reversed was 88 % busy, the limit grew from 50 to 253 in the first second).
    if (busyFirstSecond < SATURATED && crossedAt !== Number.POSITIVE_INFINITY) {
      expect(
        firstShedAt,
        `first shed ${(firstShedAt - spikeAt).toFixed(0)} ms, first window over 3× ${(crossedAt - spikeAt).toFixed(0)} ms after the spike`,
      ).toBeLessThan(crossedAt);
    }
    // Every fallback gave its slot back.
    expect(freshgate.status().budget.inFlight).toBe(0);
  }, 60_000);
});
