import { memoryPinStore } from '@freshgate/core';
import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, LatencyProbe, startCluster, TcpProxy } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
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
// its cores). The primary is reached through a proxy that can give it a small capacity: at
// most N statements a second, the rest queued, as on a saturated server.
const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 500,
  breaker: { open: 200, maxOpen: 1_000 },
  health: { exitLag: 1_000, exitFor: 300, enterLag: 400, enterFor: 1_000 },
};

const p99 = LatencyProbe.p99;

function summary(result: KindsLoadResult): string {
  return (
    `${result.requests} requests in ${result.seconds.toFixed(1)} s (${(result.requests / result.seconds).toFixed(0)} req/s), ` +
    `${result.report.reads} reads checked, ${result.report.writes} writes, ${result.primaryReads} primary reads, ` +
    `${result.fiveHundreds.length} 5xx; ${CLIENT_KINDS.map((k) => `${k}: ${result.reads[k]} reads`).join(', ')}`
  );
}

describe('adaptive primary budget (Express and Fastify on one engine)', () => {
  let cluster: Cluster;
  let proxy: TcpProxy;
  let freshgate: Freshgate;
  let apps: App[];
  let primaryUrl: string;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    proxy = await TcpProxy.start({ host: cluster.primary.host, port: cluster.primary.port });
    const url = new URL(cluster.primary.url);
    url.port = String(proxy.port);
    primaryUrl = url.toString();
    freshgate = await freshgateFor(cluster, {
      primary: primaryUrl,
      monitor: MONITOR,
      pinStore: memoryPinStore(),
      cookie: true,
      budget: {},
    });
    await untilHealthy(freshgate);
    apps = await startApps(freshgate);
  });

  afterAll(async () => {
    await Promise.all((apps ?? []).map((a) => a.close()));
    await freshgate?.close();
    await proxy?.close();
    await cluster?.stop();
  });

  it('lag storms at full load: 0 stale reads, 0 5xx, the primary within 2× its latency without them', async () => {
    const probe = LatencyProbe.start(primaryUrl);
    await sleep(1_500);
    const idle = p99(probe.take());
    const load = kindsLoad({ app: (i) => apps[i % apps.length]!, sessionsPerKind: 30, thinkMs: 5 });
    await sleep(3_000);
    // The same load with healthy replicas: what the primary's latency is on this machine
    // while it runs (the load, the apps and the databases share two cores).
    const calm = p99(probe.take());
    const stopStorm = lagStorm(cluster.replica('r1'), cluster.replica('r2'));
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

  it('a primary of small capacity: fallbacks are shed with 503 + Retry-After before its latency passes 3× its baseline, and writes keep succeeding', async () => {
    proxy.setCapacity(400);
    const probe = LatencyProbe.start(primaryUrl, { intervalMs: 10 });
    try {
      await sleep(1_500);
      const baseline = p99(probe.take());
      // Both replicas paused: every read that needs a fresh answer wants the primary.
      await Promise.all(cluster.replicas.map((r) => r.pause()));
      const shedAt: number[] = [];
      let shed = freshgate.status().budget.shed;
      const watch = setInterval(() => {
        const now = freshgate.status().budget.shed;
        if (now.normal + now.low > shed.normal + shed.low) shedAt.push(performance.now());
        shed = now;
      }, 50);
      const startedAt = performance.now();
      const load = kindsLoad({
        app: (i) => apps[i % apps.length]!,
        sessionsPerKind: 30,
        thinkMs: 5,
      });
      await sleep(8_000);
      const result = await load.stop();
      clearInterval(watch);
      await Promise.all(cluster.replicas.map((r) => r.resume()));
      const samples = probe.take();
      // The primary's p99 per 500 ms window, from the start of the load.
      const windows: { at: number; p99: number }[] = [];
      for (let t = startedAt; t < startedAt + result.seconds * 1000; t += 500) {
        const inWindow = samples.filter((s) => s.at >= t && s.at < t + 500);
        if (inWindow.length > 0) windows.push({ at: t + 500, p99: p99(inWindow) });
      }
      const over = windows.find((w) => w.p99 > 3 * baseline);
      const budget = freshgate.status().budget;
      const failedWrites = result.fiveHundreds.filter((f) => f.includes(' POST '));
      console.info(
        `[small primary, adaptive budget] ${summary(result)}; primary p99 baseline ${baseline.toFixed(2)} ms, per 500 ms: ${windows.map((w) => w.p99.toFixed(1)).join(' ')}; first shed ${shedAt[0] === undefined ? 'never' : `${(shedAt[0] - startedAt).toFixed(0)} ms`} into the load, first window over 3× ${over === undefined ? 'never' : `${(over.at - startedAt).toFixed(0)} ms`}; budget ${JSON.stringify(budget)}`,
      );
      expect(result.report.examples).toEqual([]);
      // Reads were refused as documented: 503 problem+json with Retry-After, nothing else.
      expect(result.fiveHundreds.length).toBeGreaterThan(0);
      expect(result.fiveHundreds.filter((f) => !f.includes('(documented)')).slice(0, 5)).toEqual(
        [],
      );
      expect(shedAt.length).toBeGreaterThan(0);
      if (over !== undefined) expect(shedAt[0]!).toBeLessThan(over.at);
      expect(failedWrites.slice(0, 5)).toEqual([]);
      expect(result.report.writes).toBeGreaterThan(100);
    } finally {
      await probe.stop();
      proxy.setCapacity(null);
    }
  }, 60_000);
});
