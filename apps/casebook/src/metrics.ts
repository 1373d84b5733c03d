import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** Where the Prometheus text is served, on the casebook's own HTTP server. */
export const METRICS_PATH = '/metrics';

/** The casebook's metrics: meters to hand to freshgate, and the `/metrics` handler. */
export interface CasebookMetrics {
  /** A meter of the provider, named like the package that records into it. */
  meter(name: string): Meter;
  /** Answers a scrape with the current values in the Prometheus text format. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  close(): Promise<void>;
}

/**
 * A `MeterProvider` read by the OpenTelemetry Prometheus exporter, as an application wires it.
 * The exporter's own server is not started: the casebook serves `/metrics` on its API port, so
 * one port is scraped whatever the framework.
 */
export function prometheusMetrics(): CasebookMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: (name) => provider.getMeter(name),
    handle: (request, response) => exporter.getMetricsRequestHandler(request, response),
    close: () => provider.shutdown(),
  };
}
