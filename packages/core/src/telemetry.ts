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
/** Standard attribute set on spans of failed reads. */
export const ATTR_ERROR_TYPE = 'error.type';

/** Counter: routed reads, by `freshgate.contract` and `freshgate.route`. */
export const METRIC_ROUTES = 'freshgate.routes';
/** Counter: fallbacks applied, by `freshgate.reason` and `freshgate.fallback`. */
export const METRIC_FALLBACKS = 'freshgate.fallbacks';
/** Counter: ignored or rejected tokens, by `freshgate.reason`. */
export const METRIC_TOKEN_REJECTIONS = 'freshgate.token.rejections';
/** Gauge: the primary budget's current limit (adaptive: fallbacks in flight allowed). */
export const METRIC_BUDGET_LIMIT = 'freshgate.budget.limit';
/** Gauge: primary fallbacks in flight. */
export const METRIC_BUDGET_IN_FLIGHT = 'freshgate.budget.in_flight';
/** Observable counter: primary fallbacks admitted by the budget. */
export const METRIC_BUDGET_ADMITTED = 'freshgate.budget.admitted';
/** Observable counter: primary fallbacks the budget refused. */
export const METRIC_BUDGET_SHED = 'freshgate.budget.shed';
/** Gauge: the latency baseline of primary statements the adaptive budget compares with. */
export const METRIC_BUDGET_BASELINE = 'freshgate.budget.baseline';
/** Counter: decisions that found the primary budget empty. */
export const METRIC_BUDGET_EXHAUSTED = 'freshgate.budget.exhausted';
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
  readonly #meter: Meter;
  readonly #onDecision: TelemetryOptions['onDecision'];
  // Attribute objects are reused: metric points are recorded per statement.
  readonly #attributes = new Map<string, Attributes>();
  readonly #reads = new Map<string, ReadCount>();

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
    this.#meter = meter;
    this.#onDecision = options.onDecision;
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

  /** Exports the primary budget's limit, in-flight, admitted, shed and baseline. */
  watchBudget(budget: FallbackBudget): void {
    const m = this.#meter;
    // Optional on hand-written meters, as above.
    if (m.createObservableGauge === undefined || m.createObservableCounter === undefined) return;
    const limit = m.createObservableGauge(METRIC_BUDGET_LIMIT, {
      description: 'Primary fallbacks allowed now (adaptive: in flight; fixed: tokens)',
    });
    const inFlight = m.createObservableGauge(METRIC_BUDGET_IN_FLIGHT, {
      description: 'Primary fallbacks in flight',
    });
    const admitted = m.createObservableCounter(METRIC_BUDGET_ADMITTED, {
      description: 'Primary fallbacks admitted by the budget',
    });
    const shed = m.createObservableCounter(METRIC_BUDGET_SHED, {
      description: 'Primary fallbacks refused by the budget',
    });
    const baseline = m.createObservableGauge(METRIC_BUDGET_BASELINE, {
      description: 'Latency baseline of primary statements (adaptive budget)',
      unit: 'ms',
    });
    m.addBatchObservableCallback?.(
      (result) => {
        const snap = budget.snapshot();
        result.observe(limit, snap.limit);
        result.observe(inFlight, snap.inFlight);
        result.observe(admitted, snap.admitted);
        result.observe(shed, snap.shed);
        if (snap.baselineMs !== null) result.observe(baseline, snap.baselineMs);
      },
      [limit, inFlight, admitted, shed, baseline],
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
    return [...this.#reads.values()].map((row) => ({ ...row }));
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
      const key = `${contract.label}\0${route}\0${decision.reason}`;
      const row = this.#reads.get(key);
      if (row === undefined) {
        this.#reads.set(key, {
          contract: contract.label,
          route,
          reason: decision.reason,
          reads: 1,
        });
      } else row.reads++;
      this.#routes.add(
        1,
        this.#attrs(`r\0${level}\0${route}`, () => ({
          [ATTR_CONTRACT]: level,
          [ATTR_ROUTE]: route,
        })),
      );
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

  storeFailed(operation: 'get' | 'extend', error: unknown, span: Span | undefined): void {
    this.#storeFailures.add(
      1,
      this.#attrs(`s\0${operation}`, () => ({ [ATTR_STORE_OPERATION]: operation })),
    );
    if (span?.isRecording()) {
      span.recordException(error instanceof Error ? error : String(error));
    }
  }
}
