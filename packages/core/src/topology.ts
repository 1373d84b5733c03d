import { type Clock, systemClock } from './clock.js';
import { ConfigError } from './errors.js';
import { formatLsn } from './lsn.js';
import type { ClusterLineage } from './timeline-history.js';

/** Health of a node as judged by the monitor. Only `healthy` nodes serve normal reads. */
export type NodeHealth = 'healthy' | 'lagging' | 'down' | 'quarantined' | 'unknown';

/** Circuit-breaker state of a node. Only `closed` nodes are routed to. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What the monitor knows about a replica. One object per replica, mutated in place. */
export interface ReplicaState {
  readonly role: 'replica';
  readonly name: string;
  /** `replica:<name>`, the value of `X-Freshness-Route` for reads it serves. */
  readonly route: string;
  tags: Readonly<Record<string, string>>;
  /** Last known `pg_last_wal_replay_lsn()`. */
  replayLsn: bigint | null;
  /** Clock time at which `replayLsn` was observed. */
  replayLsnAt: number | null;
  /**
   * How old the data the replica served was at {@link lagAt}, in ms: what the primary wrote
   * since `lagAt - lagMs` may be missing. `null` while unmeasured (or the monitor rests).
   */
  lagMs: number | null;
  /**
   * Clock time from which {@link lagMs} counts. A replica that replayed nothing since serves
   * data `lagMs + (now - lagAt)` ms old at most: bounded-staleness reads compare that.
   */
  lagAt: number | null;
  lagBytes: number | null;
  health: NodeHealth;
  circuit: CircuitState;
  /** System identifier + timeline of the cluster the replica follows. */
  clusterId: string | null;
  /** Statements currently running on the replica (for `least-in-flight`). */
  inFlight: number;
}

/** What the monitor knows about the primary. Mutated in place. */
export interface PrimaryState {
  readonly role: 'primary';
  readonly name: string;
  readonly route: 'primary';
  /** Last known `pg_current_wal_lsn()` (or a commit LSN seen since). */
  currentLsn: bigint | null;
  /** Clock time at which `currentLsn` was observed. */
  currentLsnAt: number | null;
  /**
   * Clock time at which the monitor sent the query of its latest primary sample: `currentLsn`
   * is at or past where the primary was then (a bound of everything any node served before).
   */
  sampleSentAt: number | null;
  /** System identifier + timeline, e.g. `7301234567890123456/1`. */
  clusterId: string | null;
  health: NodeHealth;
  circuit: CircuitState;
}

/**
 * Fields the monitor may set on a replica. `lagAt` is read only with `lagMs`, and defaults to
 * now (the monitor gives an earlier time for a replica caught up with the newest primary sample).
 */
export type ReplicaPatch = Partial<
  Pick<
    ReplicaState,
    'tags' | 'replayLsn' | 'lagMs' | 'lagAt' | 'lagBytes' | 'health' | 'circuit' | 'clusterId'
  >
>;

/** Fields the monitor may set on the primary. */
export type PrimaryPatch = Partial<
  Pick<PrimaryState, 'currentLsn' | 'sampleSentAt' | 'clusterId' | 'health' | 'circuit'>
>;

/** A state change worth telling operators about. */
export type TopologyEvent =
  | { type: 'health'; node: string; from: NodeHealth; to: NodeHealth }
  | { type: 'circuit'; node: string; from: CircuitState; to: CircuitState }
  | { type: 'cluster'; node: string; from: string | null; to: string | null };

/** How a replica is declared. */
export interface ReplicaSpec {
  name: string;
  tags?: Readonly<Record<string, string>>;
}

/** Options of {@link Topology}. */
export interface TopologyOptions {
  /** The primary's name, shown in snapshots. Default `'primary'`. */
  primary?: { name?: string };
  replicas?: readonly ReplicaSpec[];
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/** JSON-friendly copy of the topology for status pages (LSNs as text). */
export interface TopologySnapshot {
  primary: {
    name: string;
    currentLsn: string | null;
    clusterId: string | null;
    health: NodeHealth;
    circuit: CircuitState;
  };
  replicas: Array<{
    name: string;
    tags: Record<string, string>;
    replayLsn: string | null;
    lagMs: number | null;
    lagBytes: number | null;
    health: NodeHealth;
    circuit: CircuitState;
    clusterId: string | null;
    inFlight: number;
  }>;
}

/** Primary positions remembered for {@link Topology.primaryReachedAt}. */
const PRIMARY_HISTORY = 256;

/**
 * The replica-state model the monitor fills and the routing decision reads. Node state
 * objects are stable (mutated in place) so that a decision reads them without allocating.
 * Nodes start `unknown` and are not routed to until the monitor reports them healthy.
 *
 * @example
 * ```ts
 * const topology = new Topology({ replicas: [{ name: 'r1' }, { name: 'r2', tags: { pool: 'reporting' } }] });
 * topology.updatePrimary({ currentLsn: parseLsn('0/3000000'), clusterId: '7301/1', health: 'healthy' });
 * topology.updateReplica('r1', { replayLsn: parseLsn('0/2FFFF00'), lagMs: 12, clusterId: '7301/1', health: 'healthy' });
 * topology.on((event) => console.log(event));
 * ```
 */
export class Topology {
  readonly primary: PrimaryState;
  /**
   * Ancestry of the primary's timeline, set by the monitor after a failover; tokens of a
   * parent timeline stay valid up to its fork point (see `survivesTimelineSwitch`).
   */
  lineage: ClusterLineage | null = null;
  readonly #replicas: ReplicaState[] = [];
  readonly #byName = new Map<string, ReplicaState>();
  readonly #byRoute = new Map<string, ReplicaState>();
  readonly #listeners = new Set<(event: TopologyEvent) => void>();
  readonly #clock: Clock;
  // The primary's last PRIMARY_HISTORY positions and when each was first seen (ascending), for
  // predicting when a replica will have replayed an LSN.
  readonly #historyLsn: bigint[] = [];
  readonly #historyAt: number[] = [];
  #demand = 0;
  #onDemand: (() => void) | null = null;

  constructor(options: TopologyOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.primary = {
      role: 'primary',
      name: options.primary?.name ?? 'primary',
      route: 'primary',
      currentLsn: null,
      currentLsnAt: null,
      sampleSentAt: null,
      clusterId: null,
      health: 'unknown',
      circuit: 'closed',
    };
    for (const spec of options.replicas ?? []) this.addReplica(spec);
  }

  /** The replicas, in declaration order. Do not mutate; use the methods. */
  get replicas(): readonly ReplicaState[] {
    return this.#replicas;
  }

  /** The replica called `name`, if declared. */
  replica(name: string): ReplicaState | undefined {
    return this.#byName.get(name);
  }

  /** The replica whose route (`replica:<name>`) is `route`, if declared. */
  replicaByRoute(route: string): ReplicaState | undefined {
    return this.#byRoute.get(route);
  }

  /** Declares a replica; it starts `unknown` with no position. */
  addReplica(spec: ReplicaSpec): ReplicaState {
    if (typeof spec?.name !== 'string' || spec.name === '') {
      throw new ConfigError('replicas[].name', 'every replica needs a non-empty name');
    }
    if (this.#byName.has(spec.name)) {
      throw new ConfigError('replicas[].name', `replica "${spec.name}" is declared twice`);
    }
    const state: ReplicaState = {
      role: 'replica',
      name: spec.name,
      route: `replica:${spec.name}`,
      tags: Object.freeze({ ...spec.tags }),
      replayLsn: null,
      replayLsnAt: null,
      lagMs: null,
      lagAt: null,
      lagBytes: null,
      health: 'unknown',
      circuit: 'closed',
      clusterId: null,
      inFlight: 0,
    };
    this.#replicas.push(state);
    this.#byName.set(spec.name, state);
    this.#byRoute.set(state.route, state);
    return state;
  }

  /** Removes a replica (e.g. scaled down). */
  removeReplica(name: string): void {
    const state = this.#byName.get(name);
    if (!state) return;
    this.#byName.delete(name);
    this.#byRoute.delete(state.route);
    this.#replicas.splice(this.#replicas.indexOf(state), 1);
  }

  /**
   * Sets what the monitor measured. Unlike {@link observeReplayLsn} this may move
   * `replayLsn` backwards: the monitor is the authority that detects rebuilds and failovers.
   */
  updateReplica(name: string, patch: ReplicaPatch): void {
    const state = this.#require(name);
    if (patch.tags !== undefined) state.tags = Object.freeze({ ...patch.tags });
    if (patch.replayLsn !== undefined) {
      state.replayLsn = patch.replayLsn;
      state.replayLsnAt = this.#clock.now();
    }
    if (patch.lagMs !== undefined) {
      state.lagMs = patch.lagMs;
      state.lagAt = patch.lagMs === null ? null : (patch.lagAt ?? this.#clock.now());
    }
    if (patch.lagBytes !== undefined) state.lagBytes = patch.lagBytes;
    if (patch.clusterId !== undefined && patch.clusterId !== state.clusterId) {
      const from = state.clusterId;
      state.clusterId = patch.clusterId;
      this.#emit({ type: 'cluster', node: name, from, to: patch.clusterId });
    }
    this.#transition(state, patch.health, patch.circuit);
  }

  /**
   * Records a replay position seen outside the monitor (a per-request check or a wait).
   * Only moves forward: a replica never un-replays WAL, so a lower value is an older
   * observation. Returns whether the cached position moved.
   */
  observeReplayLsn(name: string, lsn: bigint): boolean {
    const state = this.#byName.get(name);
    if (!state || (state.replayLsn !== null && lsn < state.replayLsn)) return false;
    state.replayLsn = lsn;
    state.replayLsnAt = this.#clock.now();
    // A replica of this cluster never gets ahead of its primary.
    if (state.clusterId !== null && state.clusterId === this.primary.clusterId)
      this.observePrimaryLsn(lsn);
    return true;
  }

  /** Sets what the monitor measured on the primary. */
  updatePrimary(patch: PrimaryPatch): void {
    const state = this.primary;
    if (patch.currentLsn !== undefined) {
      state.currentLsn = patch.currentLsn;
      state.currentLsnAt = this.#clock.now();
      if (patch.currentLsn !== null) this.#remember(patch.currentLsn, state.currentLsnAt);
    }
    if (patch.sampleSentAt !== undefined) state.sampleSentAt = patch.sampleSentAt;
    if (patch.clusterId !== undefined && patch.clusterId !== state.clusterId) {
      const from = state.clusterId;
      state.clusterId = patch.clusterId;
      this.#emit({ type: 'cluster', node: state.name, from, to: patch.clusterId });
    }
    this.#transition(state, patch.health, patch.circuit);
  }

  /**
   * Records a primary position seen outside the monitor (e.g. a commit LSN). Only moves
   * forward.
   */
  observePrimaryLsn(lsn: bigint): boolean {
    const state = this.primary;
    if (state.currentLsn !== null && lsn < state.currentLsn) return false;
    state.currentLsn = lsn;
    state.currentLsnAt = this.#clock.now();
    this.#remember(lsn, state.currentLsnAt);
    return true;
  }

  /**
   * When the primary was first seen at or past `lsn` (a commit LSN, a monitor sample): by
   * then it had reached it (perhaps earlier). `null` when no remembered position is that far.
   */
  primaryReachedAt(lsn: bigint): number | null {
    const lsns = this.#historyLsn;
    const n = lsns.length;
    if (n === 0 || (lsns[n - 1] as bigint) < lsn) return null;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((lsns[mid] as bigint) >= lsn) hi = mid;
      else lo = mid + 1;
    }
    return this.#historyAt[lo] as number;
  }

  #remember(lsn: bigint, at: number): void {
    const lsns = this.#historyLsn;
    const last = lsns.at(-1);
    if (last !== undefined && lsn <= last) {
      if (lsn === last) return;
      // Backwards: another primary (failover, restore); what was seen of the old one is moot.
      lsns.length = 0;
      this.#historyAt.length = 0;
    }
    lsns.push(lsn);
    this.#historyAt.push(at);
    if (lsns.length > PRIMARY_HISTORY) {
      lsns.shift();
      this.#historyAt.shift();
    }
  }

  /**
   * Notes a read about to be routed by these positions. A monitor that rests while nobody
   * reads (`monitor.idle`) is woken by it.
   */
  noteDemand(): void {
    this.#demand++;
    if (this.#onDemand !== null) this.#onDemand();
  }

  /** Reads routed by these positions so far ({@link noteDemand}). */
  get demand(): number {
    return this.#demand;
  }

  /** @internal Called on the next {@link noteDemand} (a resting monitor's wake-up); `null`: none. */
  wakeOnDemand(wake: (() => void) | null): void {
    this.#onDemand = wake;
  }

  /** Counts a statement starting on a replica (for `least-in-flight`). */
  queryStarted(name: string): void {
    const state = this.#byName.get(name);
    if (state) state.inFlight++;
  }

  /** Counts a statement finishing on a replica. */
  queryFinished(name: string): void {
    const state = this.#byName.get(name);
    if (state && state.inFlight > 0) state.inFlight--;
  }

  /**
   * Subscribes to health, circuit and cluster changes. Returns the unsubscribe function.
   * A throwing listener cannot break the monitor.
   */
  on(listener: (event: TopologyEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A JSON-friendly copy for status pages. */
  snapshot(): TopologySnapshot {
    const p = this.primary;
    return {
      primary: {
        name: p.name,
        currentLsn: p.currentLsn === null ? null : formatLsn(p.currentLsn),
        clusterId: p.clusterId,
        health: p.health,
        circuit: p.circuit,
      },
      replicas: this.#replicas.map((r) => ({
        name: r.name,
        tags: { ...r.tags },
        replayLsn: r.replayLsn === null ? null : formatLsn(r.replayLsn),
        lagMs: r.lagMs,
        lagBytes: r.lagBytes,
        health: r.health,
        circuit: r.circuit,
        clusterId: r.clusterId,
        inFlight: r.inFlight,
      })),
    };
  }

  #require(name: string): ReplicaState {
    const state = this.#byName.get(name);
    if (!state) throw new ConfigError('replica', `unknown replica "${name}"`);
    return state;
  }

  #transition(
    state: ReplicaState | PrimaryState,
    health: NodeHealth | undefined,
    circuit: CircuitState | undefined,
  ): void {
    if (health !== undefined && health !== state.health) {
      const from = state.health;
      state.health = health;
      this.#emit({ type: 'health', node: state.name, from, to: health });
    }
    if (circuit !== undefined && circuit !== state.circuit) {
      const from = state.circuit;
      state.circuit = circuit;
      this.#emit({ type: 'circuit', node: state.name, from, to: circuit });
    }
  }

  #emit(event: TopologyEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A status-page listener must never break the monitor that feeds routing.
      }
    }
  }
}
