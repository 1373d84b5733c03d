import type { Span } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createEngine } from './engine.js';
import { ManualClock } from './manual-clock.js';
import type { PinStore } from './pin-store.js';
import {
  ATTR_CONTRACT,
  ATTR_REASON,
  ATTR_REQUIRED_LSN,
  ATTR_ROUTE,
  METRIC_BUDGET_ADMITTED,
  METRIC_BUDGET_BASELINE,
  METRIC_BUDGET_EXHAUSTED,
  METRIC_BUDGET_LATENCY,
  METRIC_BUDGET_LIMIT,
  METRIC_BUDGET_LOOP_DELAY,
  METRIC_BUDGET_SHED,
  METRIC_FALLBACKS,
  METRIC_NODE_TRANSITIONS,
  METRIC_REPLICA_LAG,
  METRIC_ROUTES,
  METRIC_STORE_FAILURES,
  METRIC_TOKEN_REJECTIONS,
  METRIC_WAIT_DURATION,
} from './telemetry.js';
import { Topology } from './topology.js';

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function points(metrics: ResourceMetrics, name: string) {
  const found = metrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === name);
  return (found?.dataPoints ?? []).map((p) => ({ attributes: p.attributes, value: p.value }));
}

async function setup() {
  const clock = new ManualClock();
  const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
  topology.updatePrimary({ currentLsn: 1000n, clusterId: 'c/1' });
  topology.updateReplica('r1', { replayLsn: 500n, lagMs: 5, clusterId: 'c/1', health: 'healthy' });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  }).getTracer('test');
  const decisions: string[] = [];
  const failing: PinStore = {
    get: () => Promise.reject(new Error('down')),
    extend: () => Promise.reject(new Error('down')),
  };
  const engine = await createEngine({
    topology,
    secret: 'telemetry-test-secret-long-enough-32b',
    clock,
    budget: { rate: 1, burst: 1 },
    pinStore: failing,
    onStoreError: 'token-only',
    defaultContract: { contract: 'read-your-writes', fallback: [{ wait: 100 }, 'primary'] },
    telemetry: {
      meter: meterProvider.getMeter('test'),
      onDecision: (d) => {
        decisions.push(d.reason);
        throw new Error('a broken hook must not break routing');
      },
    },
  });
  return { clock, engine, reader, exporter, tracer, decisions, topology };
}

describe('telemetry', () => {
  it('puts the decision on the span', async () => {
    const { engine, exporter, tracer } = await setup();
    const { token } = await engine.codec.sign({ lsn: 400n, cid: 'c/1' });
    const span: Span = tracer.startSpan('GET /cases/:id');
    const f = await engine.begin({ token, span });
    f.route();
    span.end();
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.attributes).toMatchObject({
      [ATTR_CONTRACT]: 'read-your-writes',
      [ATTR_ROUTE]: 'replica:r1',
      [ATTR_REQUIRED_LSN]: '0/190',
      [ATTR_REASON]: 'replica-caught-up',
    });
  });

  it('marks a 503 decision as an error on the span', async () => {
    const { engine, exporter, tracer } = await setup();
    const { token } = await engine.codec.sign({ lsn: 900n, cid: 'c/1' });
    for (let i = 0; i < 2; i++) {
      const span = tracer.startSpan('read');
      const f = await engine.begin({
        token,
        span,
        contract: { contract: 'monotonic', fallback: 'primary' },
      });
      let d = f.route();
      if (d.kind === 'check') d = f.route();
      span.end();
    }
    const last = exporter.getFinishedSpans()[1];
    expect(last?.status.code).toBe(2);
    expect(last?.attributes['error.type']).toBe('ERR_FRESHGATE_FRESHNESS_UNAVAILABLE');
  });

  it('counts routes, fallbacks, rejections, budget exhaustion, waits and store failures', async () => {
    const { engine, reader, clock, decisions } = await setup();
    const { token } = await engine.codec.sign({ lsn: 900n, cid: 'c/1' });
    await engine.begin({ token: 'garbage' });
    await engine.begin({
      token: `${token.slice(0, -2)}${token.at(-2) === 'A' ? 'B' : 'A'}${token.at(-1)}`,
    });
    // Two waits that time out, then primary (budget 1) then error.
    for (let i = 0; i < 2; i++) {
      const f = await engine.begin({ token, sessionKey: 's' });
      expect(f.route().kind).toBe('check');
      expect(f.route().kind).toBe('wait');
      clock.advance(100);
      f.route();
    }
    const eventual = await engine.begin({ contract: 'eventual' });
    eventual.route();
    expect(decisions.length).toBeGreaterThan(0);

    const { resourceMetrics } = await reader.collect();
    expect(points(resourceMetrics, METRIC_ROUTES)).toEqual(
      expect.arrayContaining([
        { attributes: { [ATTR_CONTRACT]: 'read-your-writes', [ATTR_ROUTE]: 'primary' }, value: 1 },
        { attributes: { [ATTR_CONTRACT]: 'eventual', [ATTR_ROUTE]: 'replica:r1' }, value: 1 },
      ]),
    );
    expect(points(resourceMetrics, METRIC_FALLBACKS)).toEqual(
      expect.arrayContaining([
        {
          attributes: { [ATTR_REASON]: 'no-replica-caught-up', 'freshgate.fallback': 'wait' },
          value: 2,
        },
        {
          attributes: { [ATTR_REASON]: 'no-replica-caught-up', 'freshgate.fallback': 'primary' },
          value: 1,
        },
        {
          attributes: { [ATTR_REASON]: 'no-replica-caught-up', 'freshgate.fallback': 'error' },
          value: 1,
        },
      ]),
    );
    expect(points(resourceMetrics, METRIC_TOKEN_REJECTIONS)).toEqual(
      expect.arrayContaining([
        { attributes: { [ATTR_REASON]: 'malformed' }, value: 1 },
        { attributes: { [ATTR_REASON]: 'signature' }, value: 1 },
      ]),
    );
    expect(points(resourceMetrics, METRIC_BUDGET_EXHAUSTED)).toEqual([
      { attributes: {}, value: 1 },
    ]);
    const waits = points(resourceMetrics, METRIC_WAIT_DURATION);
    expect(waits).toHaveLength(1);
    expect(waits[0]?.attributes).toEqual({ 'freshgate.wait.outcome': 'timeout' });
    expect(waits[0]?.value).toMatchObject({ count: 2, sum: 200 });
    expect(points(resourceMetrics, METRIC_STORE_FAILURES)).toEqual([
      { attributes: { 'freshgate.store.operation': 'get' }, value: 2 },
      // Exported at 0 from the start.
      { attributes: { 'freshgate.store.operation': 'extend' }, value: 0 },
    ]);
  });

  it('exports the counters that stay at 0 on a healthy system from the start', async () => {
    const { reader } = await setup();
    const { resourceMetrics } = await reader.collect();
    expect(points(resourceMetrics, METRIC_BUDGET_EXHAUSTED)).toEqual([
      { attributes: {}, value: 0 },
    ]);
    expect(points(resourceMetrics, METRIC_STORE_FAILURES)).toEqual([
      { attributes: { 'freshgate.store.operation': 'get' }, value: 0 },
      { attributes: { 'freshgate.store.operation': 'extend' }, value: 0 },
    ]);
  });

  it('counts node state changes by node and new state, and exports replica lag', async () => {
    const { reader, topology } = await setup();
    topology.updateReplica('r1', { health: 'lagging', lagMs: 2_500 });
    topology.updateReplica('r1', { health: 'down', circuit: 'open' });
    topology.updateReplica('r1', { health: 'down', circuit: 'open' }); // no change, not counted
    topology.updateReplica('r1', { health: 'healthy', circuit: 'closed', lagMs: 40 });
    topology.updatePrimary({ clusterId: 'c/2' });

    const { resourceMetrics } = await reader.collect();
    const transitions = points(resourceMetrics, METRIC_NODE_TRANSITIONS);
    const count = (node: string, transition: string, state: string) =>
      transitions.find(
        (p) =>
          p.attributes['freshgate.node'] === node &&
          p.attributes['freshgate.transition'] === transition &&
          p.attributes['freshgate.state'] === state,
      )?.value;
    expect(count('r1', 'health', 'lagging')).toBe(1);
    expect(count('r1', 'health', 'down')).toBe(1);
    expect(count('r1', 'health', 'healthy')).toBe(1);
    expect(count('r1', 'circuit', 'open')).toBe(1);
    expect(count('r1', 'circuit', 'closed')).toBe(1);
    expect(count('primary', 'cluster', 'c/2')).toBe(1);
    expect(points(resourceMetrics, METRIC_REPLICA_LAG)).toEqual([
      { attributes: { 'freshgate.node': 'r1' }, value: 40 },
    ]);
  });

  it('exports the budget: limit, admitted and shed by priority, and what the adaptive limit measured', async () => {
    const clock = new ManualClock(0);
    const topology = new Topology({ replicas: [{ name: 'r1' }], clock });
    topology.updatePrimary({ currentLsn: 1000n, clusterId: 'c/1' });
    topology.updateReplica('r1', {
      replayLsn: 500n,
      lagMs: 5,
      clusterId: 'c/1',
      health: 'healthy',
    });
    const reader = new TestReader();
    const engine = await createEngine({
      topology,
      secret: 'telemetry-test-secret-long-enough-32b',
      clock,
      budget: { floor: 1, initial: 1 }, // a burst of 2, one of which anonymous reads may take
      telemetry: { meter: new MeterProvider({ readers: [reader] }).getMeter('test') },
    });
    const { token } = await engine.codec.sign({ lsn: 900n, cid: 'c/1' });
    const fallback = { contract: 'read-your-writes', fallback: 'primary' } as const;
    // Anonymous reads take the token above the reserve, then are shed; so is the second user.
    for (const input of [{}, {}, { token }, { token }]) {
      const f = await engine.begin({ ...input, contract: fallback, readAfterWrite: 'true' });
      for (let d = f.route(); d.kind !== 'primary' && d.kind !== 'error'; d = f.route()) {
        if (d.kind === 'barrier') f.observedBarrier(1000n, 'query');
      }
    }
    for (let ms = 0; ms < 300; ms++) {
      clock.advance(1);
      engine.observePrimary(2, 'ok');
    }

    const { resourceMetrics } = await reader.collect();
    expect(points(resourceMetrics, METRIC_BUDGET_ADMITTED)).toEqual([
      { attributes: { 'freshgate.budget.priority': 'normal' }, value: 1 },
      { attributes: { 'freshgate.budget.priority': 'low' }, value: 1 },
    ]);
    expect(points(resourceMetrics, METRIC_BUDGET_SHED)).toEqual([
      { attributes: { 'freshgate.budget.priority': 'normal' }, value: 1 },
      { attributes: { 'freshgate.budget.priority': 'low' }, value: 1 },
    ]);
    // The window saw fallbacks refused and the latency held: the limit grew by √1.
    expect(points(resourceMetrics, METRIC_BUDGET_LIMIT)).toEqual([{ attributes: {}, value: 2 }]);
    expect(points(resourceMetrics, METRIC_BUDGET_BASELINE)).toEqual([{ attributes: {}, value: 2 }]);
    expect(points(resourceMetrics, METRIC_BUDGET_LATENCY)).toEqual([{ attributes: {}, value: 2 }]);
    expect(points(resourceMetrics, METRIC_BUDGET_LOOP_DELAY)).toEqual([
      { attributes: {}, value: 0 },
    ]);
  });
});
