import { readFileSync } from 'node:fs';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** The metric reference operators read; the tests take the metric list from it. */
export const METRICS_DOC = new URL('../../docs/metrics.md', import.meta.url);

/** One row of the table in docs/metrics.md. */
export interface DocumentedMetric {
  /** The OpenTelemetry instrument name, e.g. `freshgate.routes`. */
  name: string;
  kind: 'counter' | 'histogram' | 'observable counter' | 'observable gauge';
  /** `undefined` for `—`. */
  unit: string | undefined;
  /** The series names the Prometheus exporter serves for it, as documented. */
  prometheus: string[];
  /** The "appears" cell. */
  appears: string;
  /**
   * The configuration the metric needs, from the start of the "appears" cell (`Redis pin
   * store:`, `memory pin store:`, `with probe`); `undefined` when every gate exports it.
   */
  requires: 'redis' | 'memory' | 'probe' | undefined;
}

const KINDS = new Set(['counter', 'histogram', 'observable counter', 'observable gauge']);

/** Parses the metric table of docs/metrics.md (rows whose first cell is a backticked name). */
export function documentedMetrics(text = readFileSync(METRICS_DOC, 'utf8')): DocumentedMetric[] {
  const rows: DocumentedMetric[] = [];
  for (const line of text.split('\n')) {
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.length !== 6 || !/^`freshgate\.[a-z_.]+`$/.test(cells[0] ?? '')) continue;
    const [name, kind, unit, , prometheus, appears] = cells as [string, ...string[]];
    if (!KINDS.has(kind as string)) throw new Error(`docs/metrics.md: ${name} has kind "${kind}"`);
    rows.push({
      name: name.slice(1, -1),
      kind: kind as DocumentedMetric['kind'],
      unit: unit === '—' ? undefined : (unit as string).replace(/^`|`$/g, ''),
      prometheus: [...(prometheus as string).matchAll(/`([a-zA-Z_:][a-zA-Z0-9_:]*)`/g)].map(
        (m) => m[1] as string,
      ),
      appears: appears as string,
      requires: /^Redis pin store:/.test(appears as string)
        ? 'redis'
        : /^memory pin store:/.test(appears as string)
          ? 'memory'
          : /^with `probe`/.test(appears as string)
            ? 'probe'
            : undefined,
    });
  }
  return rows;
}

/** The metric names of a Prometheus text exposition (series lines, not comments). */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (match) names.add(match[1] as string);
  }
  return names;
}

/**
 * The series names the OpenTelemetry Prometheus exporter really serves for each documented
 * instrument: each is created with its documented kind and unit in a MeterProvider read by a
 * PrometheusExporter, recorded once, and the exposition read back.
 */
export async function renderedNames(metrics: DocumentedMetric[]): Promise<Map<string, string[]>> {
  const rendered = new Map<string, string[]>();
  for (const metric of metrics) {
    const exporter = new PrometheusExporter({ preventServerStart: true, withoutTargetInfo: true });
    const provider = new MeterProvider({ readers: [exporter] });
    const meter = provider.getMeter('@freshgate/core');
    const options = metric.unit === undefined ? {} : { unit: metric.unit };
    switch (metric.kind) {
      case 'counter':
        meter.createCounter(metric.name, options).add(1);
        break;
      case 'histogram':
        meter.createHistogram(metric.name, options).record(1);
        break;
      case 'observable counter':
        meter.createObservableCounter(metric.name, options).addCallback((r) => r.observe(1));
        break;
      case 'observable gauge':
        meter.createObservableGauge(metric.name, options).addCallback((r) => r.observe(1));
        break;
    }
    const text = await new Promise<string>((resolve, reject) => {
      const response = {
        statusCode: 0,
        setHeader() {},
        end: resolve,
      };
      try {
        exporter.getMetricsRequestHandler({} as never, response as never);
      } catch (error) {
        reject(error);
      }
    });
    rendered.set(metric.name, [...exposedNames(text)].sort());
    await provider.shutdown();
  }
  return rendered;
}

// PromQL words that are not metric names: keywords, and anything followed by `(` is a function
// or an aggregation.
const PROMQL_KEYWORDS = new Set([
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

/** The metric names a PromQL expression selects (label names, functions and variables left out). */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // dashboard variables
  const names: string[] = [];
  for (const match of stripped.matchAll(
    /(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g,
  )) {
    const word = match[1] as string;
    if (!PROMQL_KEYWORDS.has(word.toLowerCase())) names.push(word);
  }
  return names;
}
