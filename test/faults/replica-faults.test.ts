import {
  METRIC_BUDGET_EXHAUSTED,
  METRIC_FALLBACKS,
  METRIC_NODE_TRANSITIONS,
  METRIC_TOKEN_REJECTIONS,
  memoryPinStore,
  type TopologyEvent,
} from '@freshgate/core';
import type { Freshgate, FreshgateOptions } from '@freshgate/pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, failover, startCluster, waitFor } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';
import {
  type App,
  call,
  isDocumented503,
  type LoadResult,
  recordingMeter,
  runLoad,
  SCHEMA,
  sleep,
  startApps,
} from './support.js';

// Replicas replay every commit this late, so a read that ignored a session's token or pin
// would miss its write: each fault below runs where a routing mistake is a visible violation.
const APPLY_DELAY_MS = 150;
const HEALTH = { exitLag: 1_000, exitFor: 300, enterLag: 400, enterFor: 1_000 };
const MONITOR: FreshgateOptions['monitor'] = {
  interval: 50,
  quarantine: 500,
  breaker: { open: 200, maxOpen: 1_000 },
  health: HEALTH,
};

function until<T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  return waitFor(what, async () => check(), { timeoutMs });
}

/** The invariants of every fault: requests complete, nothing stale, no unexplained 5xx. */
function expectClean(result: LoadResult, label: string) {
  console.info(
    `[${label}] ${result.requests} requests, ${result.report.reads} checked reads, ` +
      `${result.report.writes} writes, statuses ${JSON.stringify(result.byStatus)}, ` +
      `503 ${result.documented503}, max ${result.maxMs.toFixed(0)} ms`,
  );
  expect(result.report.examples).toEqual([]);
  expect(result.report.readYourWritesViolations).toBe(0);
  expect(result.report.monotonicViolations).toBe(0);
  expect(result.unexpected).toEqual([]);
  expect(result.report.reads).toBeGreaterThan(50);
  expect(result.report.writes).toBeGreaterThan(20);
}

describe('replica faults under HTTP load (Express and Fastify on one engine)', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  let apps: App[];
  const telemetry = recordingMeter();
  const events: (TopologyEvent & { at: number })[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.primary.query(SCHEMA);
    await cluster.waitForReplicas();
    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
    freshgate = await freshgateFor(cluster, {
      monitor: MONITOR,
      pinStore: memoryPinStore(),
      telemetry: { meter: telemetry.meter },
    });
    await untilHealthy(freshgate);
    freshgate.topology.on((event) => events.push({ ...event, at: performance.now() }));
    apps = await startApps(freshgate);
  });

  afterAll(async () => {
    await Promise.all((apps ?? []).map((a) => a.close()));
    await freshgate?.close();
    await cluster?.stop();
  });

  const healthOf = (node: string, since: number) =>
    events
      .filter((e) => e.type === 'health' && e.node === node && e.at >= since)
      .map((e) => ({ to: e.to as string, at: e.at }));

  it('a replica killed mid-load and restarted: out of rotation, then back without a restart of the app', async () => {
    const load = runLoad({ apps, sessions: 16, reads: ['items', 'feed', 'eventual'] });
    await sleep(1_000);
    const r2 = cluster.replica('r2');
    const killedAt = performance.now();
    const downBefore = telemetry.sum(METRIC_NODE_TRANSITIONS, {
      'freshgate.node': 'r2',
      'freshgate.state': 'down',
    });
    await r2.kill();
    await until('r2 down', () =>
      freshgate.topology.replica('r2')?.health === 'down' ? 1 : undefined,
    );
    await sleep(800);
    await r2.start();
    await untilHealthy(freshgate, ['r2'], 20_000);
    const backAt = performance.now();
    await sleep(1_500);
    const result = await load.stop();
    expectClean(result, 'replica killed');

    const r2Health = healthOf('r2', killedAt).map((e) => e.to);
    expect(r2Health[0]).toBe('down');
    expect(r2Health.at(-1)).toBe('healthy');
    expect(
      telemetry.sum(METRIC_NODE_TRANSITIONS, { 'freshgate.node': 'r2', 'freshgate.state': 'down' }),
    ).toBeGreaterThan(downBefore);
    const servedByR2 = (from: number, to = Number.POSITIVE_INFINITY) =>
      result.routes.filter((o) => o.route === 'replica:r2' && o.at > from && o.at < to).length;
    expect(servedByR2(0, killedAt), 'r2 served reads before the kill').toBeGreaterThan(0);
    expect(servedByR2(backAt), 'r2 serves reads again after its restart').toBeGreaterThan(0);
    // Both frameworks carried the load.
    expect(new Set(result.routes.map((o) => o.framework))).toEqual(new Set(['express', 'fastify']));
  });

  it('lag past the thresholds and back: one exit, one return, no flapping', async () => {
    const load = runLoad({ apps, sessions: 12, reads: ['items', 'feed', 'eventual'] });
    await sleep(500);
    const r1 = cluster.replica('r1');
    const since = performance.now();
    await r1.setApplyDelay(2_500);
    const laggingAt = await until('r1 lagging', () =>
      freshgate.topology.replica('r1')?.health === 'lagging' ? performance.now() : undefined,
    );
    const peakLag = freshgate.topology.replica('r1')!.lagMs!;
    await sleep(1_000);
    await r1.setApplyDelay(APPLY_DELAY_MS);
    const healthyAt = await until('r1 healthy again', () =>
      freshgate.topology.replica('r1')?.health === 'healthy' ? performance.now() : undefined,
    );
    // Long enough, even on a busy machine, for the recovered replica to be chosen again.
    await sleep(1_500);
    const result = await load.stop();
    expectClean(result, 'replica lag');

    expect(peakLag).toBeGreaterThan(HEALTH.exitLag);
    // Hysteresis: while the lag climbed, hovered and fell, r1 changed state exactly twice.
    const changes = healthOf('r1', since);
    expect(changes.map((e) => e.to)).toEqual(['lagging', 'healthy']);
    // The lagging replica served no request that ran entirely while it was lagging: such a
    // request was decided then. One that started before the change may be decided just
    // before it and end long after it on a busy machine, and one that started before the
    // return may be decided after it, so only requests inside the period count. The
    // topology's own change events, not this test's polling, bound the period.
    const lagging = changes[0]!;
    const healthy = changes[1]!;
    expect(lagging.at).toBeLessThanOrEqual(laggingAt);
    expect(healthy.at).toBeLessThanOrEqual(healthyAt);
    const inside = result.routes.filter((o) => o.startedAt > lagging.at && o.at < healthy.at);
    expect(inside.length, 'reads ran while r1 was lagging').toBeGreaterThan(20);
    expect(inside.filter((o) => o.route === 'replica:r1')).toEqual([]);
    expect(result.routes.some((o) => o.route === 'replica:r1' && o.at > healthyAt)).toBe(true);
  });

  it('a replica rebuilt from a new base backup while tokens for higher LSNs are in flight', async () => {
    const load = runLoad({ apps, sessions: 16, reads: ['items', 'feed', 'eventual'] });
    await sleep(800);
    const since = performance.now();
    await cluster.replica('r2').rebuild();
    await cluster.replica('r2').setApplyDelay(APPLY_DELAY_MS);
    await untilHealthy(freshgate, ['r2'], 20_000);
    const backAt = performance.now();
    await sleep(1_500);
    const result = await load.stop();
    expectClean(result, 'replica rebuilt');
    const r2Health = healthOf('r2', since).map((e) => e.to);
    // Down while rebuilt, then distrusted until it had looked consistent for quarantineMs.
    expect(r2Health).toContain('down');
    expect(r2Health).toContain('quarantined');
    expect(r2Health.indexOf('quarantined')).toBeLessThan(r2Health.lastIndexOf('healthy'));
    expect(result.routes.some((o) => o.route === 'replica:r2' && o.at > backAt)).toBe(true);
  });

  it('all replicas down: primary within the budget, then each contract’s next fallback; back without a restart', async () => {
    const budget = { rate: 20, burst: 40 };
    const meter = recordingMeter();
    const limited = await freshgateFor(cluster, {
      monitor: MONITOR,
      budget,
      telemetry: { meter: meter.meter },
    });
    const limitedApps = await startApps(limited);
    try {
      await untilHealthy(limited);
      const load = runLoad({
        apps: limitedApps,
        sessions: 16,
        reads: ['items', 'feed', 'eventual', 'strong', 'guarded', 'waiting'],
        thinkMs: 10,
      });
      await sleep(800);
      await Promise.all(cluster.replicas.map((r) => r.stop()));
      await until('every replica down', () =>
        limited.topology.replicas.every((r) => r.health === 'down') ? 1 : undefined,
      );
      const downAt = performance.now();
      const primaryBefore = meter.sum(METRIC_FALLBACKS, { 'freshgate.fallback': 'primary' });
      const exhaustedBefore = meter.sum(METRIC_BUDGET_EXHAUSTED);
      await sleep(2_500);
      const primaryFallbacks =
        meter.sum(METRIC_FALLBACKS, { 'freshgate.fallback': 'primary' }) - primaryBefore;
      const outageSeconds = (performance.now() - downAt) / 1_000;
      const exhausted = meter.sum(METRIC_BUDGET_EXHAUSTED) - exhaustedBefore;
      const upAt = performance.now();
      await Promise.all(cluster.replicas.map((r) => r.start()));
      await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)));
      await untilHealthy(limited, undefined, 20_000);
      const backAt = performance.now();
      await sleep(1_500);
      const result = await load.stop();
      expectClean(result, 'all replicas down');

      const outage = result.routes.filter((o) => o.at > downAt + 300 && o.at < upAt);
      expect(outage.length).toBeGreaterThan(100);
      // Nothing was served by a replica, nothing hung: the primary or the documented 503.
      expect(outage.filter((o) => o.status === 200 && o.route !== 'primary')).toEqual([]);
      expect(outage.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);
      expect(Math.max(...outage.map((o) => o.ms))).toBeLessThan(2_000);
      // strong reads always reach the primary; guarded reads (fallback 'error') fail closed.
      const of = (path: string) => outage.filter((o) => o.path === path);
      expect(of('strong').every((o) => o.status === 200)).toBe(true);
      expect(of('guarded').length).toBeGreaterThan(0);
      expect(of('guarded').every((o) => o.status === 503)).toBe(true);
      // The primary took no more fallbacks than the budget allows; past it, 503s.
      expect(primaryFallbacks).toBeLessThanOrEqual(
        budget.burst + budget.rate * (outageSeconds + 0.5),
      );
      expect(exhausted, 'the budget ran out during the outage').toBeGreaterThan(0);
      expect(of('items').some((o) => o.status === 503)).toBe(true);
      expect(of('items').some((o) => o.status === 200)).toBe(true);
      // Replicas are used again, by the same running engine.
      const after = result.routes.filter((o) => o.at > backAt && o.route?.startsWith('replica:'));
      expect(new Set(after.map((o) => o.route))).toEqual(new Set(['replica:r1', 'replica:r2']));
      console.info(
        `[all replicas down] ${outage.length} reads in ${outageSeconds.toFixed(1)} s: ` +
          `${primaryFallbacks} primary fallbacks (budget ${budget.burst} + ${budget.rate}/s), ` +
          `${outage.filter((o) => o.status === 503).length} × 503`,
      );
    } finally {
      await Promise.all(limitedApps.map((a) => a.close()));
      await limited.close();
    }
  });

  it('a promoted replica is never used as a replica; tokens from the old timeline do not hang requests', async () => {
    const load = runLoad({ apps, sessions: 12, reads: ['items', 'feed', 'eventual'] });
    await sleep(800);
    // Under write load: the harness retries what recovery conflicts cancel.
    await cluster.replica('r1').promote();
    const quarantinedAt = await until('r1 quarantined as promoted', () =>
      freshgate.monitor.quarantineReason('r1') === 'promoted' ? performance.now() : undefined,
    );
    await sleep(1_500);
    // Old-timeline tokens, as clients hold them at the failover.
    const oldTokens: string[] = [];
    for (const app of apps) {
      const write = await call(`${app.url}/items/failover-${app.framework}`, { method: 'POST' });
      oldTokens.push(write.headers.get('x-freshness-token')!);
    }
    const result = await load.stop();
    expectClean(result, 'replica promoted');
    expect(
      result.routes.filter((o) => o.route === 'replica:r1' && o.at > quarantinedAt + 300),
    ).toEqual([]);
    expect(freshgate.topology.replica('r1')?.health).toBe('quarantined');

    // The failover proper: the old primary stops, r1 takes over.
    await failover(cluster, 'r1');
    const meter = recordingMeter();
    const after = await freshgateFor(cluster, {
      replicas: { r2: cluster.replica('r2').url },
      monitor: MONITOR,
      telemetry: { meter: meter.meter },
    });
    const afterApps = await startApps(after);
    try {
      await until('the new timeline', () =>
        after.topology.primary.clusterId?.endsWith('/2') ? 1 : undefined,
      );
      for (const app of afterApps) {
        for (const token of oldTokens) {
          for (const path of ['items', 'feed']) {
            const key = `failover-${app.framework}`;
            const exchange = await call(
              `${app.url}/${path === 'items' ? '' : 'feed/'}items/${key}`,
              {
                headers: { 'x-freshness-token': token },
                deadlineMs: 5_000,
              },
            );
            expect(exchange.ms).toBeLessThan(2_000);
            expect(exchange.status === 200 || isDocumented503(exchange)).toBe(true);
            expect(exchange.headers.get('x-freshness-route')).not.toBe('replica:r1');
          }
        }
      }
      expect(meter.sum(METRIC_TOKEN_REJECTIONS, { 'freshgate.reason': 'foreign-cluster' })).toBe(
        oldTokens.length * afterApps.length * 2,
      );
    } finally {
      await Promise.all(afterApps.map((a) => a.close()));
      await after.close();
    }
  });
});
