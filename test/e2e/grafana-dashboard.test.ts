import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type DocumentedMetric,
  documentedMetrics,
  promqlMetricNames,
  renderedNames,
} from './metrics-doc.js';

const DASHBOARD = new URL('../../docs/grafana/freshgate.json', import.meta.url);

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  title: string;
  type: string;
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  schemaVersion: number;
  panels: Panel[];
  templating?: { list: { name: string; query?: unknown; definition?: string }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const metrics = documentedMetrics();

describe('docs/metrics.md names metrics as the Prometheus exporter serves them', () => {
  let rendered: Map<string, string[]>;

  beforeAll(async () => {
    rendered = await renderedNames(metrics);
  });

  it('documents the metrics freshgate creates', () => {
    expect(metrics.length).toBeGreaterThanOrEqual(20);
    expect(metrics.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        'freshgate.routes',
        'freshgate.token.rejections',
        'freshgate.budget.shed',
        'freshgate.replica.lag',
        'freshgate.probe.delay',
      ]),
    );
  });

  // The Prometheus column is what @opentelemetry/exporter-prometheus renders for the instrument's
  // documented kind and unit: dots to underscores, `_total` on counters, `_bucket`/`_sum`/`_count`
  // for histograms, no unit suffix.
  for (const metric of metrics) {
    it(`${metric.name} (${metric.kind}) is served as ${metric.prometheus.join(', ')}`, () => {
      expect([...metric.prometheus].sort()).toEqual(rendered.get(metric.name));
    });
  }
});

describe('docs/grafana/freshgate.json', () => {
  const documented = new Map<string, DocumentedMetric>();
  for (const metric of metrics) for (const name of metric.prometheus) documented.set(name, metric);

  it('is an importable dashboard whose data source is the DS_PROMETHEUS input', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.__inputs).toContainEqual(
      expect.objectContaining({
        name: 'DS_PROMETHEUS',
        type: 'datasource',
        pluginId: 'prometheus',
      }),
    );
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(`\${DS_PROMETHEUS}`);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('has the panels operators need', () => {
    expect(panels.map((p) => p.title)).toEqual(
      expect.arrayContaining([
        'Replica share of reads',
        'Primary fallbacks/s',
        'Wait duration p99',
        'Replica lag',
        'Probe delay p99',
        'Pin store failures',
        'Token rejections by reason',
        'Primary budget: limit, admitted, shed',
      ]),
    );
  });

  const queries = [
    ...panels.flatMap((p) =>
      (p.targets ?? []).map((t, i) => ({
        where: `panel "${p.title}" query ${i + 1}`,
        expr: t.expr,
      })),
    ),
    ...(dashboard.templating?.list ?? []).map((v) => ({
      where: `variable $${v.name}`,
      expr: v.definition,
    })),
  ];

  for (const { where, expr } of queries) {
    it(`${where} names only documented metrics`, () => {
      expect(expr, where).toEqual(expect.any(String));
      const names = promqlMetricNames(
        (expr as string).replace(/^label_values\((\w+),\s*\w+\)$/, '$1'),
      );
      expect(names.length, `${where}: no metric in ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(documented.has(name), `${where}: ${name} is not in docs/metrics.md`).toBe(true);
      }
    });
  }

  it('reads histograms through their buckets', () => {
    for (const { expr } of queries) {
      for (const match of (expr ?? '').matchAll(/histogram_quantile\(/g)) {
        expect(expr?.slice(match.index), 'histogram_quantile needs _bucket series').toMatch(
          /_bucket\b/,
        );
      }
    }
  });
});

describe('promqlMetricNames', () => {
  it('finds metric names and leaves out functions, labels, variables and keywords', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (le, freshgate_node) (rate(freshgate_probe_delay_bucket{instance=~"$instance", x="a b"}[$__rate_interval])))',
      ),
    ).toEqual(['freshgate_probe_delay_bucket']);
    expect(
      promqlMetricNames(
        'sum(rate(a_total[5m])) / ignoring (freshgate_reason) group_left sum (b_total) > bool 1e3',
      ),
    ).toEqual(['a_total', 'b_total']);
    expect(promqlMetricNames('max by (freshgate_node) (freshgate_replica_lagg)')).toEqual([
      'freshgate_replica_lagg',
    ]);
  });
});
