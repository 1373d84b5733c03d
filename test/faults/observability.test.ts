import {
  ATTR_CONTRACT,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK,
  ATTR_NODE,
  ATTR_REASON,
  ATTR_REQUIRED_LSN,
  ATTR_ROUTE,
  ATTR_STATE,
  ATTR_STORE_OPERATION,
  FreshnessUnavailableError,
  formatLsn,
  METRIC_BUDGET_EXHAUSTED,
  METRIC_FALLBACKS,
  METRIC_NODE_TRANSITIONS,
  METRIC_STORE_FAILURES,
  METRIC_TOKEN_REJECTIONS,
} from '@freshgate/core';
import type { Freshgate } from '@freshgate/pg';
import { redisPinStore } from '@freshgate/redis';
import { SpanStatusCode } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster, waitFor } from '../harness/index.js';
import { freshgateFor, untilHealthy } from '../integration/support.js';

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Spans and metrics of freshgate under faults, through the OpenTelemetry SDK's in-memory exporters. */
describe('observability under faults', () => {
  let cluster: Cluster;
  let freshgate: Freshgate;
  let redis: Redis;
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  }).getTracer('test');

  async function metric(name: string) {
    const { resourceMetrics } = await reader.collect();
    const found = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === name);
    return (found?.dataPoints ?? []).map((p) => ({
      attributes: p.attributes,
      value: p.value as number,
    }));
  }

  /** Runs one read in its own span, as an instrumented HTTP server would. */
  async function tracedRead(input: Parameters<Freshgate['begin']>[0]): Promise<ReadableSpan> {
    const span = tracer.startSpan('GET /test');
    try {
      const { db } = await freshgate.begin({ ...input, span });
      await db.query('SELECT count(*) FROM notes').catch((error) => {
        if (!(error instanceof FreshnessUnavailableError)) throw error;
      });
    } finally {
      span.end();
    }
    return exporter.getFinishedSpans().at(-1)!;
  }

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, redis: true });
    await cluster.primary.query('CREATE TABLE notes (id serial PRIMARY KEY)');
    await cluster.waitForReplicas();
    redis = new Redis(cluster.redisUrl, {
      enableOfflineQueue: false,
      commandTimeout: 1_000,
      maxRetriesPerRequest: 0,
    });
    redis.on('error', () => {});
    freshgate = await freshgateFor(cluster, {
      pinStore: redisPinStore(redis),
      budget: { rate: 1, burst: 3 },
      telemetry: { meter: meterProvider.getMeter('freshgate') },
    });
    await untilHealthy(freshgate);
  });

  afterAll(async () => {
    await freshgate?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  it('records the fallback of a read no replica can serve, then the budget running out', async () => {
    await Promise.all(cluster.replicas.map((r) => r.pause()));
    try {
      const write = await freshgate.begin({ contract: 'read-your-writes' });
      await write.db.query('INSERT INTO notes DEFAULT VALUES');
      const token = write.freshness.token!;
      const required = write.freshness.requiredLsn() ?? freshgate.topology.primary.currentLsn!;

      const first = await tracedRead({ contract: 'read-your-writes', token });
      expect(first.attributes).toMatchObject({
        [ATTR_CONTRACT]: 'read-your-writes',
        [ATTR_ROUTE]: 'primary',
        [ATTR_REASON]: 'no-replica-caught-up',
        [ATTR_FALLBACK]: 'primary',
      });
      expect(first.attributes[ATTR_REQUIRED_LSN]).toBe(formatLsn(required));

      // burst 3: the fourth primary fallback finds the budget empty and fails closed.
      let failed: ReadableSpan | undefined;
      for (let i = 0; i < 5 && !failed; i++) {
        const span = await tracedRead({ contract: 'read-your-writes', token });
        if (span.status.code === SpanStatusCode.ERROR) failed = span;
      }
      expect(failed?.attributes).toMatchObject({
        [ATTR_ERROR_TYPE]: 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE',
        [ATTR_FALLBACK]: 'error',
      });
      expect(
        (await metric(METRIC_BUDGET_EXHAUSTED)).reduce((n, p) => n + p.value, 0),
      ).toBeGreaterThan(0);
      const fallbacks = await metric(METRIC_FALLBACKS);
      expect(fallbacks).toContainEqual({
        attributes: { [ATTR_REASON]: 'no-replica-caught-up', [ATTR_FALLBACK]: 'primary' },
        value: expect.any(Number),
      });
      expect(fallbacks.some((p) => p.attributes[ATTR_FALLBACK] === 'error')).toBe(true);
    } finally {
      await Promise.all(cluster.replicas.map((r) => r.resume()));
    }
  });

  it('records store failures on the span and in a counter while Redis is down', async () => {
    await cluster.redis!.stop();
    try {
      const span = await tracedRead({ contract: 'read-your-writes', sessionKey: 'user-7' });
      expect(span.events.some((e) => e.name === 'exception')).toBe(true);
      expect(JSON.stringify(span.events)).not.toContain('user-7');
      const failures = await metric(METRIC_STORE_FAILURES);
      expect(
        failures.find((p) => p.attributes[ATTR_STORE_OPERATION] === 'get')?.value,
      ).toBeGreaterThan(0);
    } finally {
      await cluster.redis!.start();
    }
  });

  it('counts rejected tokens by reason', async () => {
    await tracedRead({ contract: 'eventual', token: 'eyJhbGciOiJub25lIn0.eyJsc24iOiJGRi8wIn0.' });
    await tracedRead({ contract: 'eventual', token: 'x'.repeat(5_000) });
    const reasons = (await metric(METRIC_TOKEN_REJECTIONS)).map((p) => p.attributes[ATTR_REASON]);
    expect(reasons).toEqual(expect.arrayContaining(['oversize']));
    expect(reasons.length).toBeGreaterThanOrEqual(2);
  });

  it('counts replica state changes when a replica dies and comes back', async () => {
    const r2 = cluster.replica('r2');
    await r2.kill();
    await waitFor('r2 down', () =>
      freshgate.topology.replica('r2')!.health === 'down' ? true : undefined,
    );
    await r2.start();
    await untilHealthy(freshgate, ['r2'], 20_000);
    const transitions = (await metric(METRIC_NODE_TRANSITIONS)).filter(
      (p) => p.attributes[ATTR_NODE] === 'r2',
    );
    const states = transitions.map((p) => p.attributes[ATTR_STATE]);
    expect(states).toEqual(expect.arrayContaining(['down', 'healthy']));
  });
});
