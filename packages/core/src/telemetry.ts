import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  metrics,
  type Span,
  SpanStatusCode,
} from '@opentelemetry/api';
import type { FallbackBudget } from './budget.js';
import type { Contract, ContractLevel } from './contract.js';
import type { BarrierCause, Decision, DecisionReason } from './decide.js';
import type { TokenRejectionReason } from './errors.js';
import { formatLsn } from './lsn.js';
import type { Topology, TopologyEvent } from './topology.js';

/** Span attribute: the contract level of the read (`monotonic`, `bounded`, ...). */
export const ATTR_CONTRACT = 'freshgate.contract';
/** Span/metric attribute: where the read went, `primary` or `replica:<name>`. */
export const ATTR_ROUTE = 'freshgate.route';
/** Span attribute: the required LSN, `X/Y`, when one is known. */
export const ATTR_REQUIRED_LSN = 'freshgate.required_lsn';
/** Span/metric attribute: the decision reason. */
export const ATTR_REASON = 'freshgate.reason';
/** Span/metric attribute: the fallback applied (`primary`, `wait`, `stale`, `error`). */
export const ATTR_FALLBACK = 'freshgate.fallback';
/** Span attribute: the read was served stale. */
export const ATTR_STALE = 'freshgate.stale';
/** Span attribute: measured lag of the serving replica, ms. */
export const ATTR_LAG_MS = 'freshgate.lag_ms';
/** Metric attribute: outcome of a wait (`caught-up` or `timeout`). */
export const ATTR_WAIT_OUTCOME = 'freshgate.wait.outcome';
/** Metric attribute: pin store operation (`get` or `extend`). */
export const ATTR_STORE_OPERATION = 'freshgate.store.operation';
/** Metric attribute: the node a state change or lag belongs to (`primary` or the replica's name). */
export const ATTR_NODE = 'freshgate.node';
/** Metric attribute: what changed on a node (`health`, `circuit` or `cluster`). */
export const ATTR_TRANSITION = 'freshgate.transition';
/** Metric attribute: the state a node changed to (`healthy`, `lagging`, `down`, `open`, ...). */
export const ATTR_STATE = 'freshgate.state';
/** Metric attribute: what an evicted pin held (`node`: only a sticky node; `lsn`: a floor). */
export const ATTR_PIN_KIND = 'freshgate.pin.kind';
/** Span attribute: the primary position a barrier read must reach, `X/Y`. */
export const ATTR_BARRIER_LSN = 'freshgate.barrier_lsn';
/** Metric attribute: how a barrier's primary position was obtained (`monitor`, `query`, `shared`). */
export const ATTR_BARRIER_SOURCE = 'freshgate.barrier.source';
/** Metric attribute: the budget priority of primary fallbacks (`normal` or `low`). */
export const ATTR_BUDGET_PRIORITY = 'freshgate.budget.priority';
/** Standard attribute set on spans of failed reads. */
export const ATTR_ERROR_TYPE = 'error.type';

/** Counter: routed reads, by `freshgate.contract` and `freshgate.route`. */
export const METRIC_ROUTES = 'freshgate.routes';
/** Counter: fallbacks applied, by `freshgate.reason` and `freshgate.fallback`. */
export const METRIC_FALLBACKS = 'freshgate.fallbacks';
/** Counter: ignored or rejected tokens, by `freshgate.reason`. */
export const METRIC_TOKEN_REJECTIONS = 'freshgate.token.rejections';
/** Counter: decisions that found the primary budget empty. */
export const METRIC_BUDGET_EXHAUSTED = 'freshgate.budget.exhausted';
/** Gauge (fallbacks/s): the primary budget's limit now (adaptive: the limit it has learnt). */
export const METRIC_BUDGET_LIMIT = 'freshgate.budget.limit';
/** Observable counter: primary fallbacks the budget admitted, by `freshgate.budget.priority`. */
export const METRIC_BUDGET_ADMITTED = 'freshgate.budget.admitted';
/** Observable counter: primary fallbacks the budget refused, by `freshgate.budget.priority`. */
export const METRIC_BUDGET_SHED = 'freshgate.budget.shed';
/** Gauge (ms): the adaptive budget's baseline, the primary's usual statement latency. */
export const METRIC_BUDGET_BASELINE = 'freshgate.budget.baseline';
/** Gauge (ms): the adaptive budget's last window latency of primary statements, loop delay subtracted. */
export const METRIC_BUDGET_LATENCY = 'freshgate.budget.latency';
/** Gauge (ms): the event-loop delay of the adaptive budget's last window. */
export const METRIC_BUDGET_LOOP_DELAY = 'freshgate.budget.loop_delay';
/** Gauge: the adaptive budget's primary fallbacks in flight, once the data layer reports their ends. */
export const METRIC_BUDGET_IN_FLIGHT = 'freshgate.budget.in_flight';
/** Histogram (ms): time spent waiting for a replica, by `freshgate.wait.outcome`. */
export const METRIC_WAIT_DURATION = 'freshgate.wait.duration';
/** Counter: pin store failures and timeouts, by `freshgate.store.operation`. */
export const METRIC_STORE_FAILURES = 'freshgate.store.failures';
/** Counter: pins the memory pin store dropped to stay within `maxEntries`, by `freshgate.pin.kind`. */
export const METRIC_PIN_EVICTIONS = 'freshgate.pin.evictions';
/** Counter: node state changes seen by the monitor, by `freshgate.node`, `freshgate.transition`, `freshgate.state`. */
export const METRIC_NODE_TRANSITIONS = 'freshgate.node.transitions';
/**
 * Counter: barriers taken (a read that needs the primary's current position as its required
 * LSN), by `freshgate.reason` (the {@link BarrierCause}) and `freshgate.barrier.source`.
 */
export const METRIC_BARRIERS = 'freshgate.barriers';
/** Gauge (ms): measured replication lag of each replica, by `freshgate.node`. */
export const METRIC_REPLICA_LAG = 'freshgate.replica.lag';
/**
 * Histogram (ms): the synthetic read-after-write probe's delay (a write acknowledged by the
 * primary until a replica shows it), by `freshgate.node`. Recorded when `probe` is enabled.
 */
export const METRIC_PROBE_DELAY = 'freshgate.probe.delay';

/** Telemetry options of the engine. */
export interface TelemetryOptions {
  /** Meter for freshgate's metrics. Default: `metrics.getMeter('@freshgate/core')`. */
  meter?: Meter;
  /**
   * Called after every routed decision with the span the attributes went to and the
   * effective contract level (e.g. to keep in-process counters for a status page). Runs guarded:
   * a throwing hook cannot break a request.
   */
  onDecision?: (decision: Decision, span: Span | undefined, contract: ContractLevel) => void;
}

/**
 * One row of the read counters (`status().reads`): how many reads of one contract went to one
 * route for one reason, since the process started.
 */
export interface ReadCount {
  /** The contract's label, e.g. `monotonic` or `{ maxLag: 2000ms }`. */
  contract: string;
  /** `primary` or `replica:<name>`. */
  route: string;
  /** Why the read went there, e.g. `replica-fresh`, `no-replica`, `strong`. */
  reason: DecisionReason;
  reads: number;
}

/** A read counter row and the attributes its reads are exported with. */
interface ReadRow {
  readonly count: ReadCount;
  readonly attrs: Attributes;
}

/** Why a presented token was not used. */
export type TokenIgnoredReason = TokenRejectionReason;

/** Records freshgate's spans attributes and metrics. Internal to the engine. */
export class Telemetry {
  readonly #routes: Counter;
  readonly #fallbacks: Counter;
  readonly #rejections: Counter;
  readonly #exhausted: Counter;
  readonly #wait: Histogram;
  readonly #storeFailures: Counter;
  readonly #transitions: Counter;
  readonly #barriers: Counter;
  readonly #probe: Histogram;
  readonly #meter: Meter;
  readonly #onDecision: TelemetryOptions['onDecision'];
  // Attribute objects are reused: metric points are recorded per statement.
  readonly #attributes = new Map<string, Attributes>();
  readonly #reads: ReadCount[] = [];
  /**
   * Each read's counter row and metric attributes, by contract label, route and reason: found
   * from the decision's own strings, with no key built per read.
   */
  readonly #readRows = new Map<string, Map<string, Map<string, ReadRow>>>();

  constructor(options: TelemetryOptions = {}) {
    const meter = options.meter ?? metrics.getMeter('@freshgate/core');
    this.#routes = meter.createCounter(METRIC_ROUTES, {
      description: 'Reads routed, by contract and route',
    });
    this.#fallbacks = meter.createCounter(METRIC_FALLBACKS, {
      description: 'Fallbacks applied, by reason',
    });
    this.#rejections = meter.createCounter(METRIC_TOKEN_REJECTIONS, {
      description: 'Freshness tokens ignored or rejected, by reason',
    });
    this.#exhausted = meter.createCounter(METRIC_BUDGET_EXHAUSTED, {
      description: 'Decisions that found the primary budget empty',
    });
    this.#wait = meter.createHistogram(METRIC_WAIT_DURATION, {
      description: 'Time spent waiting for a replica to reach the required LSN',
      unit: 'ms',
    });
    this.#storeFailures = meter.createCounter(METRIC_STORE_FAILURES, {
      description: 'Pin store failures and timeouts, by operation',
    });
    this.#transitions = meter.createCounter(METRIC_NODE_TRANSITIONS, {
      description: 'Node health, circuit and cluster changes, by node and new state',
    });
    this.#barriers = meter.createCounter(METRIC_BARRIERS, {
      description:
        'Barrier reads: primary positions observed as a required LSN, by cause and source',
    });
    this.#probe = meter.createHistogram(METRIC_PROBE_DELAY, {
      description:
        'Synthetic read-after-write probe: a write acknowledged until a replica shows it, by node',
      unit: 'ms',
    });
    this.#meter = meter;
    this.#onDecision = options.onDecision;
    // Counters that stay at 0 on a healthy system are exported from the start, at 0 for each
    // of their (fixed) attribute values: an alert on rate() or increase() then sees the
    // series before the first failure, and a dashboard shows 0 rather than no data.
    this.#exhausted.add(0);
    for (const operation of ['get', 'extend'] as const) {
      this.#storeFailures.add(0, this.#storeAttrs(operation));
    }
  }

  /** Records one probe measurement of `node`. */
  probed(node: string, ms: number): void {
    this.#probe.record(
      ms,
      this.#attrs(`q\0${node}`, () => ({ [ATTR_NODE]: node })),
    );
  }

  /**
   * Counts the topology's state changes and exports each replica's lag, so that flapping,
   * outages and lag can be alerted on without a status-page listener.
   */
  watch(topology: Topology): void {
    topology.on((event: TopologyEvent) => {
      const to = event.to ?? 'none';
      this.#transitions.add(
        1,
        this.#attrs(`n\0${event.node}\0${event.type}\0${to}`, () => ({
          [ATTR_NODE]: event.node,
          [ATTR_TRANSITION]: event.type,
          [ATTR_STATE]: to,
        })),
      );
    });
    // Optional on hand-written meters: the gauge is a convenience, routing never depends on it.
    const gauge = this.#meter.createObservableGauge?.(METRIC_REPLICA_LAG, {
      description: 'Measured replication lag of each replica',
      unit: 'ms',
    });
    gauge?.addCallback((result) => {
      for (const replica of topology.replicas) {
        if (replica.lagMs === null) continue;
        result.observe(
          replica.lagMs,
          this.#attrs(`l\0${replica.name}`, () => ({ [ATTR_NODE]: replica.name })),
        );
      }
    });
  }

  /**
   * Exports the primary budget's limit, counters and (adaptive) measurements, read when the
   * metrics are collected: nothing is recorded per decision.
   */
  watchBudget(budget: FallbackBudget): void {
    const meter = this.#meter;
    const priorities = ['normal', 'low'] as const;
    const byPriority = (priority: 'normal' | 'low') =>
      this.#attrs(`p\0${priority}`, () => ({ [ATTR_BUDGET_PRIORITY]: priority }));
    meter
      .createObservableCounter?.(METRIC_BUDGET_ADMITTED, {
        description: 'Primary fallbacks the budget admitted, by priority',
      })
      ?.addCallback((result) => {
        const { admitted } = budget.status();
        for (const p of priorities) result.observe(admitted[p], byPriority(p));
      });
    meter
      .createObservableCounter?.(METRIC_BUDGET_SHED, {
        description: 'Primary fallbacks the budget refused, by priority',
      })
      ?.addCallback((result) => {
        const { shed } = budget.status();
        for (const p of priorities) result.observe(shed[p], byPriority(p));
      });
    const gauge = (
      name: string,
      description: string,
      unit: string,
      read: (status: ReturnType<FallbackBudget['status']>) => number | null,
    ) =>
      meter.createObservableGauge?.(name, { description, unit })?.addCallback((result) => {
        const value = read(budget.status());
        if (value !== null) result.observe(value);
      });
    gauge(
      METRIC_BUDGET_LIMIT,
      'Primary fallbacks per second the budget allows now',
      '{fallback}/s',
      (s) => s.limit,
    );
    gauge(
      METRIC_BUDGET_BASELINE,
      'Usual latency of primary statements (adaptive budget)',
      'ms',
      (s) => s.baselineMs,
    );
    gauge(
      METRIC_BUDGET_LATENCY,
      'Latency of primary statements in the last window, event-loop delay subtracted (adaptive budget)',
      'ms',
      (s) => s.latencyMs,
    );
    gauge(
      METRIC_BUDGET_LOOP_DELAY,
      'Event-loop delay in the last window (adaptive budget)',
      'ms',
      (s) => s.loopDelayMs,
    );
    gauge(
      METRIC_BUDGET_IN_FLIGHT,
      'Primary fallbacks whose statement has not ended (adaptive budget)',
      '{fallback}',
      (s) => s.inFlight,
    );
  }

  #attrs(key: string, make: () => Attributes): Attributes {
    let attrs = this.#attributes.get(key);
    if (attrs === undefined) {
      attrs = Object.freeze(make());
      this.#attributes.set(key, attrs);
    }
    return attrs;
  }

  /** The read counters, one row per contract, route and reason. */
  reads(): ReadCount[] {
    return this.#reads.map((row) => ({ ...row }));
  }

  #readRow(contract: Contract, route: string, reason: DecisionReason): ReadRow {
    let byRoute = this.#readRows.get(contract.label);
    if (byRoute === undefined) {
      byRoute = new Map();
      this.#readRows.set(contract.label, byRoute);
    }
    let byReason = byRoute.get(route);
    if (byReason === undefined) {
      byReason = new Map();
      byRoute.set(route, byReason);
    }
    let row = byReason.get(reason);
    if (row === undefined) {
      const level = contract.level;
      const count: ReadCount = { contract: contract.label, route, reason, reads: 0 };
      this.#reads.push(count);
      row = {
        count,
        attrs: this.#attrs(`r\0${level}\0${route}`, () => ({
          [ATTR_CONTRACT]: level,
          [ATTR_ROUTE]: route,
        })),
      };
      byReason.set(reason, row);
    }
    return row;
  }

  decision(
    contract: Contract,
    decision: Decision,
    requiredLsn: bigint | null,
    span: Span | undefined,
  ): void {
    const level = contract.level;
    const route = decision.route;
    if (route !== null) {
      const row = this.#readRow(contract, route, decision.reason);
      row.count.reads++;
      this.#routes.add(1, row.attrs);
    }
    if (decision.fallback !== null && decision.kind !== 'check') {
      const { reason, fallback } = decision;
      this.#fallbacks.add(
        1,
        this.#attrs(`f\0${reason}\0${fallback}`, () => ({
          [ATTR_REASON]: reason,
          [ATTR_FALLBACK]: fallback,
        })),
      );
    }
    if (decision.budgetExhausted) this.#exhausted.add(1);
    if (span?.isRecording()) {
      span.setAttribute(ATTR_CONTRACT, level);
      span.setAttribute(ATTR_REASON, decision.reason);
      if (route !== null) span.setAttribute(ATTR_ROUTE, route);
      if (requiredLsn !== null) span.setAttribute(ATTR_REQUIRED_LSN, formatLsn(requiredLsn));
      if (decision.fallback !== null) span.setAttribute(ATTR_FALLBACK, decision.fallback);
      if (decision.stale) span.setAttribute(ATTR_STALE, true);
      if (decision.lagMs !== null) span.setAttribute(ATTR_LAG_MS, decision.lagMs);
      if (decision.kind === 'error') {
        span.setAttribute(ATTR_ERROR_TYPE, 'ERR_FRESHGATE_FRESHNESS_UNAVAILABLE');
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: `no node can serve the read (${decision.reason})`,
        });
      }
    }
    if (this.#onDecision !== undefined) {
      try {
        this.#onDecision(decision, span, level);
      } catch {
        // User hooks observe; they must never change or break routing.
      }
    }
  }

  tokenIgnored(reason: TokenIgnoredReason): void {
    this.#rejections.add(
      1,
      this.#attrs(`t\0${reason}`, () => ({ [ATTR_REASON]: reason })),
    );
  }

  waited(ms: number, caughtUp: boolean): void {
    const outcome = caughtUp ? 'caught-up' : 'timeout';
    this.#wait.record(
      ms,
      this.#attrs(`w\0${outcome}`, () => ({ [ATTR_WAIT_OUTCOME]: outcome })),
    );
  }

  barrier(cause: BarrierCause, source: string, lsn: bigint, span: Span | undefined): void {
    this.#barriers.add(
      1,
      this.#attrs(`b\0${cause}\0${source}`, () => ({
        [ATTR_REASON]: cause,
        [ATTR_BARRIER_SOURCE]: source,
      })),
    );
    if (span?.isRecording()) span.setAttribute(ATTR_BARRIER_LSN, formatLsn(lsn));
  }

  #storeAttrs(operation: 'get' | 'extend'): Attributes {
    return this.#attrs(`s\0${operation}`, () => ({ [ATTR_STORE_OPERATION]: operation }));
  }

  storeFailed(operation: 'get' | 'extend', error: unknown, span: Span | undefined): void {
    this.#storeFailures.add(1, this.#storeAttrs(operation));
    if (span?.isRecording()) {
      span.recordException(error instanceof Error ? error : String(error));
    }
  }
}
