import {
  type CircuitBreakerSettings,
  type Clock,
  ConfigError,
  type Duration,
  parseLsn,
} from '@freshgate/core';
import {
  CircuitBreaker,
  type ClusterLineage,
  checkOptions,
  parseDuration,
  parseTimelineHistory,
  survivesTimelineSwitch,
  systemClock,
  type Topology,
  withTimeout,
} from '@freshgate/core/adapter';
import { HealthHysteresis, type HysteresisOptions } from './health-hysteresis.js';
import { LsnHistory } from './lsn-history.js';

/** Default poll interval of every node. */
export const DEFAULT_MONITOR_INTERVAL: Duration = '100ms';
/** Default ± fraction of jitter on the poll interval (spreads polls of many app instances). */
export const DEFAULT_MONITOR_JITTER = 0.1;
/** Default time a poll may take before it counts as a failure. */
export const DEFAULT_MONITOR_TIMEOUT: Duration = '1s';
/** Default time a quarantined replica must look consistent before it is trusted again. */
export const DEFAULT_QUARANTINE: Duration = '2s';
/**
 * Default rest of the monitor: with no read routed for 10 s, every node is polled every second
 * instead of every `interval`, until the next read.
 */
export const DEFAULT_MONITOR_IDLE = { after: '10s', interval: '1s' } as const;
/** Default breaker of the monitor: one failed poll opens the circuit (the node is `down`). */
export const DEFAULT_MONITOR_BREAKER = {
  failureThreshold: 1,
  open: '500ms',
  maxOpen: '5s',
} as const;

/** Options of the replica monitor (`createFreshgate({ monitor })`). Durations are ms or `'2s'`-style strings. */
export interface MonitorOptions {
  /** Poll interval per node. Default `'100ms'`. */
  interval?: Duration;
  /** Jitter as a fraction of the interval, 0 to 1. Default 0.1. */
  jitter?: number;
  /** A poll slower than this fails. Default `'1s'`. */
  timeout?: Duration;
  /** Lag thresholds with hysteresis. Defaults: enter < 1 s for 5 s, leave > 2 s for 1 s. */
  health?: HysteresisOptions;
  /** Circuit breaker per node. Default `{ failureThreshold: 1, open: '500ms', maxOpen: '5s' }`. */
  breaker?: CircuitBreakerSettings;
  /** Time a quarantined replica must stay consistent. Default `'2s'`. */
  quarantine?: Duration;
  /** Heartbeat on the primary every this long (0 = off). Default: `'1s'` when `synchronous_commit` is off, else off. */
  heartbeat?: Duration;
  /**
   * Rest while nobody reads: with no read routed for `after`, poll every node every `interval`
   * (replicas' lags go unpublished meanwhile, so no read is bounded by an old one); the next
   * read wakes the monitor, which polls the primary, then the replicas, at once. `false`: poll
   * every `interval` always. Default `{ after: '10s', interval: '1s' }`.
   */
  idle?: { after?: Duration; interval?: Duration } | false;
  clock?: Clock;
}

const MONITOR_OPTIONS = [
  'interval',
  'jitter',
  'timeout',
  'health',
  'breaker',
  'quarantine',
  'heartbeat',
  'idle',
  'clock',
];

/** Opens the monitor's own connection to a node. */
export type ConnectNode = () => Promise<{
  query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}>;

/** Why a replica is in quarantine. */
export type QuarantineReason =
  | 'promoted'
  | 'foreign-system'
  | 'timeline'
  | 'went-backwards'
  | 'restarted';

/** The primary's current timeline, from the name of the WAL segment it writes. */
export const PRIMARY_TIMELINE_SQL = `('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`;

// One statement per poll, the same on every node: position, role, identity and start time.
// pg_stat_wal_receiver.received_tli needs pg_monitor (or pg_read_all_stats); without it the
// checkpoint's timeline is used, which lags behind a timeline switch until the next restartpoint.

export const POLL_SQL = `SELECT pg_is_in_recovery() AS recovery,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
  (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
  CASE WHEN pg_is_in_recovery()
    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
    ELSE ${PRIMARY_TIMELINE_SQL} END AS tli,
  (extract(epoch FROM pg_postmaster_start_time()) * 1000)::bigint::text AS started`;

interface PollRow {
  recovery: boolean;
  lsn: string | null;
  sysid: string;
  tli: number | null;
  started: string;
}

interface NodeWatch {
  name: string;
  role: 'primary' | 'replica';
  connect: ConnectNode;
  connection: Awaited<ReturnType<ConnectNode>> | undefined;
  breaker: CircuitBreaker;
  health: HealthHysteresis;
  timer: NodeJS.Timeout | undefined;
  lastLsn: bigint | null;
  started: string | null;
  quarantine: { reason: QuarantineReason; since: number } | undefined;
  polled: boolean;
  /** The poll running or queued now: polls of one node never overlap, and callers join it. */
  pending: { forced: boolean; promise: Promise<void> } | undefined;
  /** The tail of this node's poll chain. */
  chain: Promise<void>;
}

/**
 * Polls the primary and every replica with one cheap statement and keeps a
 * {@link Topology} up to date: positions, lag (from a history of primary positions, so idle
 * primaries and replica clocks do not matter), health with hysteresis, a circuit breaker per
 * node, and quarantine of replicas that were promoted, restarted or rebuilt, changed system
 * or timeline, or went backwards.
 *
 * @example
 * ```ts
 * const monitor = new ReplicaMonitor(topology, { primary: connectPrimary, replicas: { r1: connectR1 } });
 * monitor.start();
 * await monitor.ready();
 * ```
 */
export class ReplicaMonitor {
  readonly #topology: Topology;
  readonly #nodes: NodeWatch[] = [];
  readonly #history = new LsnHistory();
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #jitter: number;
  readonly #timeoutMs: number;
  readonly #quarantineMs: number;
  #heartbeatMs: number;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #running = false;
  #primarySample: { lsn: bigint; sentAt: number } | null = null;
  #readyWaiters: (() => void)[] = [];
  #lagFloor: ((replica: string) => number) | null = null;
  // Resting (`idle`), by the monotonic clock like the timers: reads last seen, when the
  // monitor last woke, and when the primary's last poll was sent (a replica's lag is
  // published only once the primary has been polled since the monitor woke).
  readonly #idleAfterMs: number | null;
  readonly #idleIntervalMs: number;
  #resting = false;
  #demandSeen = 0;
  #demandAt = 0;
  #awakeSince = 0;
  #primaryPolledAt = Number.NEGATIVE_INFINITY;

  /**
   * @internal Another measure of how far behind a replica is at least (the read-after-write
   * probe's oldest write it does not show, ms): a replica's lag is never reported below it.
   */
  setLagFloor(floor: (replica: string) => number): void {
    this.#lagFloor = floor;
  }

  /**
   * @internal `createFreshgate()` builds the monitor from its `monitor` option. Every option is
   * checked here; errors name it as `createFreshgate` takes it (`monitor.interval`).
   */
  constructor(
    topology: Topology,
    nodes: { primary: ConnectNode; replicas: Record<string, ConnectNode> },
    options: MonitorOptions = {},
  ) {
    checkOptions(options, MONITOR_OPTIONS, 'monitor', 'monitor.');
    this.#topology = topology;
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = parseDuration(
      options.interval ?? DEFAULT_MONITOR_INTERVAL,
      'monitor.interval',
    );
    if (this.#intervalMs < 1) throw new ConfigError('monitor.interval', 'must be greater than 0');
    this.#jitter = options.jitter ?? DEFAULT_MONITOR_JITTER;
    if (typeof this.#jitter !== 'number' || !(this.#jitter >= 0 && this.#jitter <= 1)) {
      throw new ConfigError(
        'monitor.jitter',
        `expected a fraction from 0 to 1, got ${String(this.#jitter)}`,
      );
    }
    this.#timeoutMs = parseDuration(options.timeout ?? DEFAULT_MONITOR_TIMEOUT, 'monitor.timeout');
    if (this.#timeoutMs < 1) throw new ConfigError('monitor.timeout', 'must be greater than 0');
    this.#quarantineMs = parseDuration(
      options.quarantine ?? DEFAULT_QUARANTINE,
      'monitor.quarantine',
    );
    this.#heartbeatMs = parseDuration(options.heartbeat ?? 0, 'monitor.heartbeat');
    const idle = options.idle ?? DEFAULT_MONITOR_IDLE;
    if (idle !== false && (idle === null || typeof idle !== 'object')) {
      throw new ConfigError(
        'monitor.idle',
        "expected { after, interval } or false, e.g. { after: '10s', interval: '1s' }",
      );
    }
    if (idle !== false) checkOptions(idle, ['after', 'interval'], 'monitor.idle', 'monitor.idle.');
    this.#idleAfterMs =
      idle === false
        ? null
        : parseDuration(idle.after ?? DEFAULT_MONITOR_IDLE.after, 'monitor.idle.after');
    this.#idleIntervalMs =
      idle === false
        ? this.#intervalMs
        : parseDuration(idle.interval ?? DEFAULT_MONITOR_IDLE.interval, 'monitor.idle.interval');
    if (this.#idleAfterMs !== null && this.#idleAfterMs < 1) {
      throw new ConfigError('monitor.idle.after', 'must be greater than 0');
    }
    if (this.#idleIntervalMs < this.#intervalMs) {
      throw new ConfigError(
        'monitor.idle.interval',
        `must be at least monitor.interval (${this.#intervalMs}ms)`,
      );
    }
    // Checked once, before any node is watched.
    new HealthHysteresis(options.health, 'monitor.health.');
    const watch = (name: string, role: NodeWatch['role'], connect: ConnectNode): NodeWatch => {
      const node: NodeWatch = {
        name,
        role,
        connect,
        connection: undefined,
        breaker: new CircuitBreaker({
          defaults: DEFAULT_MONITOR_BREAKER,
          settings: options.breaker,
          path: 'monitor.breaker.',
          clock: this.#clock,
        }),
        health: new HealthHysteresis(options.health, 'monitor.health.'),
        timer: undefined,
        lastLsn: null,
        started: null,
        quarantine: undefined,
        polled: false,
        pending: undefined,
        chain: Promise.resolve(),
      };
      this.#nodes.push(node);
      return node;
    };
    watch(topology.primary.name, 'primary', nodes.primary);
    for (const [name, connect] of Object.entries(nodes.replicas)) watch(name, 'replica', connect);
  }

  /** Starts polling (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#demandSeen = this.#topology.demand;
    this.#demandAt = performance.now();
    this.#awakeSince = this.#demandAt;
    // The primary first: a replica's lag is measured against the primary's positions, so a
    // replica polled before any primary sample could only be judged `unknown`.
    const [primary, ...replicas] = this.#nodes;
    this.#schedule(primary!, 0, () => {
      for (const node of replicas) this.#schedule(node, 0);
    });
    this.setHeartbeat(this.#heartbeatMs);
  }

  /**
   * Resolves once every node has been polled once (successfully or not), the primary first,
   * so that healthy replicas are routable as soon as it resolves.
   */
  ready(): Promise<void> {
    if (this.#nodes.every((n) => n.polled)) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Changes the heartbeat period (0 = off). */
  setHeartbeat(ms: number): void {
    this.#heartbeatMs = ms;
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    if (!this.#running || ms <= 0) return;
    const primary = this.#nodes[0]!;
    this.#heartbeatTimer = setInterval(() => {
      // A tiny non-transactional WAL record: keeps an idle primary's insert position reachable
      // by replicas (a commit LSN taken with pg_current_wal_insert_lsn() may point past a
      // page header that no replica reaches until the next record is written).
      primary.connection
        ?.query("SELECT pg_logical_emit_message(false, 'freshgate', 'heartbeat')")
        .catch(() => {});
    }, ms);
    this.#heartbeatTimer.unref();
  }

  /**
   * Polls one node now (used by tests and by callers that want a fresh view). Never rejects.
   * With `force`, the node's circuit breaker is bypassed and the monitor's connection is
   * opened afresh: a caller that just reached the node's address (say, a new connection to
   * the primary's address answering as another cluster) knows better than the breaker's
   * back-off, and a connection opened before the address moved would still reach the old
   * node. A call while a poll is queued joins it.
   */
  pollNow(name: string, options?: { force?: boolean }): Promise<void> {
    const node = this.#nodes.find((n) => n.name === name);
    return node ? this.#enqueue(node, options?.force === true) : Promise.resolve();
  }

  /** Runs a poll of `node` after the one in progress, if any; never rejects. */
  #enqueue(node: NodeWatch, forced: boolean): Promise<void> {
    const queued = node.pending;
    if (queued && (queued.forced || !forced)) return queued.promise;
    const promise = node.chain.then(async () => {
      if (node.pending?.promise === promise) node.pending = undefined;
      try {
        await this.#poll(node, forced);
      } catch {
        // #poll handles its own failures; nothing may stop a node from being polled again.
      }
    });
    node.pending = { forced, promise };
    node.chain = promise;
    return promise;
  }

  /** Stops polling and closes the monitor's connections. */
  async close(): Promise<void> {
    this.#running = false;
    this.#topology.wakeOnDemand(null);
    clearInterval(this.#heartbeatTimer);
    await Promise.all(
      this.#nodes.map(async (node) => {
        clearTimeout(node.timer);
        const connection = node.connection;
        node.connection = undefined;
        await connection?.end().catch(() => {});
      }),
    );
  }

  /**
   * The primary's position from the last successful poll, with the clock time at which that
   * poll was sent (a barrier read may use it when it was sent after the request arrived).
   */
  primarySample(): { lsn: bigint; sentAt: number } | null {
    return this.#primarySample;
  }

  /** Why a replica is quarantined, if it is. */
  quarantineReason(name: string): QuarantineReason | undefined {
    return this.#nodes.find((n) => n.name === name)?.quarantine?.reason;
  }

  #schedule(node: NodeWatch, delay: number, afterPoll?: () => void): void {
    if (!this.#running) return;
    node.timer = setTimeout(async () => {
      node.timer = undefined;
      await this.#enqueue(node, false);
      afterPoll?.();
      this.#schedule(node, this.#nextDelay());
    }, delay);
    node.timer.unref();
  }

  /** The time to a node's next poll: `interval`, or `idle.interval` while resting; jittered. */
  #nextDelay(): number {
    if (this.#idleAfterMs !== null) {
      const now = performance.now();
      const demand = this.#topology.demand;
      if (demand !== this.#demandSeen) {
        this.#demandSeen = demand;
        this.#demandAt = now;
      } else if (!this.#resting && now - this.#demandAt >= this.#idleAfterMs) this.#rest();
    }
    const base = this.#resting ? this.#idleIntervalMs : this.#intervalMs;
    const spread = base * this.#jitter;
    return base - spread + Math.random() * 2 * spread;
  }

  /**
   * Nobody reads: poll slowly, and publish no replica lag (one measured a second ago cannot
   * bound a read's staleness) until a read wakes the monitor.
   */
  #rest(): void {
    this.#resting = true;
    for (const node of this.#nodes) {
      if (node.role === 'replica') this.#topology.updateReplica(node.name, { lagMs: null });
    }
    this.#topology.wakeOnDemand(() => this.#wake());
  }

  /** A read came: poll the primary at once, then the replicas, then every `interval`. */
  #wake(): void {
    this.#topology.wakeOnDemand(null);
    this.#resting = false;
    this.#demandSeen = this.#topology.demand;
    this.#demandAt = performance.now();
    this.#awakeSince = this.#demandAt;
    const atOnce = (node: NodeWatch, afterPoll?: () => void) => {
      // A node whose poll is running goes on at `interval` after it.
      if (node.timer === undefined) return afterPoll?.();
      clearTimeout(node.timer);
      this.#schedule(node, 0, afterPoll);
    };
    const [primary, ...replicas] = this.#nodes;
    atOnce(primary!, () => {
      for (const node of replicas) atOnce(node);
    });
  }

  async #poll(node: NodeWatch, forced = false): Promise<void> {
    const polledAt = performance.now();
    try {
      if (forced && node.connection) {
        // Whoever forced this poll reached the node's address and found something else than
        // the monitor knows: a connection opened before the address moved would still reach
        // the old node.
        const stale = node.connection;
        node.connection = undefined;
        stale.end().catch(() => {});
      }
      if (!forced && !node.breaker.allow()) {
        this.#markDown(node);
        return;
      }
      try {
        const sentAt = this.#clock.now();
        const row = await this.#query(node);
        node.breaker.success();
        if (node.role === 'primary') await this.#onPrimarySample(node, row, sentAt);
        else this.#replicaSample(node, row);
      } catch {
        node.breaker.failure();
        const connection = node.connection;
        node.connection = undefined;
        connection?.end().catch(() => {});
        this.#markDown(node);
      }
    } finally {
      // Sampled, or found down (then the positions known are all there is, as before a rest).
      if (node.role === 'primary') this.#primaryPolledAt = polledAt;
      if (!node.polled) {
        node.polled = true;
        if (this.#nodes.every((n) => n.polled)) {
          for (const resolve of this.#readyWaiters.splice(0)) resolve();
        }
      }
    }
  }

  async #query(node: NodeWatch): Promise<PollRow> {
    // One deadline for the whole poll: connecting and querying share it.
    const deadline = performance.now() + this.#timeoutMs;
    const timedOut = () => new Error('monitor poll timed out');
    const bounded = <T>(promise: Promise<T>) =>
      withTimeout(promise, Math.max(0, deadline - performance.now()), timedOut);
    if (!node.connection) {
      const connecting = node.connect();
      try {
        node.connection = await bounded(connecting);
      } catch (error) {
        // The connection attempt lost the race but goes on: a slow-to-accept server would
        // otherwise keep one backend per timed-out poll. End it when (if) it arrives.
        connecting.then(
          (late) => late.end().catch(() => {}),
          () => {},
        );
        throw error;
      }
    }
    const result = await bounded(node.connection.query(POLL_SQL));
    return result.rows[0] as unknown as PollRow;
  }

  #markDown(node: NodeWatch): void {
    const circuit = node.breaker.state;
    if (node.role === 'primary') {
      this.#topology.updatePrimary({ health: 'down', circuit });
      return;
    }
    // Keep `started`: a node that comes back with another start time was restarted or
    // rebuilt, and is quarantined until it proves itself.
    node.health.reset();
    this.#topology.updateReplica(node.name, { health: 'down', circuit });
  }

  async #onPrimarySample(node: NodeWatch, row: PollRow, sentAt: number): Promise<void> {
    if (row.recovery || row.lsn === null) {
      // The "primary" endpoint is a standby (demoted, or the pool points at the wrong node).
      this.#primarySample = null;
      this.#topology.updatePrimary({
        sampleSentAt: null,
        health: 'quarantined',
        circuit: 'closed',
      });
      return;
    }
    const lsn = parseLsn(row.lsn);
    this.#primarySample = { lsn, sentAt };
    const clusterId = `${row.sysid}/${row.tli}`;
    // A new timeline (failover) or a new system: learn the new timeline's ancestry before
    // its cluster id is published, so that no token of the parent timeline is dropped that
    // the new timeline still honours.
    const lineage = this.#topology.lineage;
    if (lineage === null || `${lineage.systemId}/${lineage.timeline}` !== clusterId) {
      this.#topology.lineage = await readLineage(node.connection, row.sysid, Number(row.tli));
    }
    const cached = this.#topology.primary.currentLsn;
    const reset =
      clusterId !== this.#topology.primary.clusterId ||
      (node.lastLsn !== null && lsn < node.lastLsn);
    if (reset) this.#history.clear();
    node.lastLsn = lsn;
    // At the time the query was sent the primary was at `lsn` or before: a replica that
    // replayed `lsn` has everything the primary had then (later would claim too much).
    this.#history.record(sentAt, lsn);
    // Commit LSNs and measured read positions may have moved the cached position past this
    // sample; only a new cluster or a primary that went backwards (restore) may lower it.
    const currentLsn = !reset && cached !== null && cached > lsn ? cached : lsn;
    this.#topology.updatePrimary({
      currentLsn,
      sampleSentAt: sentAt,
      clusterId,
      health: 'healthy',
      circuit: 'closed',
    });
  }

  #replicaSample(node: NodeWatch, row: PollRow): void {
    const now = this.#clock.now();
    const lsn = row.lsn === null ? null : parseLsn(row.lsn);
    const primaryId = this.#topology.primary.clusterId;
    let clusterId = `${row.sysid}/${row.tli}`;
    // A replica still replaying the parent timeline, not past the point where the primary's
    // timeline forked from it, holds a prefix of the new timeline's history: it is on the
    // new timeline already, only behind (timeline-history.ts states the rule).
    const lineage = this.#topology.lineage;
    if (
      row.recovery &&
      primaryId !== null &&
      clusterId !== primaryId &&
      lineage !== null &&
      lineage.ancestors !== null &&
      lsn !== null &&
      survivesTimelineSwitch(lineage, clusterId, lsn)
    )
      clusterId = primaryId;
    let reason: QuarantineReason | undefined;
    if (!row.recovery) reason = 'promoted';
    else if (primaryId !== null && row.sysid !== primaryId.split('/')[0]) reason = 'foreign-system';
    else if (primaryId !== null && clusterId !== primaryId) reason = 'timeline';
    else if (lsn !== null && node.lastLsn !== null && lsn < node.lastLsn) reason = 'went-backwards';
    else if (node.started !== null && node.started !== row.started) reason = 'restarted';
    node.started = row.started;
    if (lsn !== null) node.lastLsn = lsn;

    if (reason === 'promoted' && node.quarantine?.reason !== 'promoted') {
      // A listed replica answers as a primary: the primary's address has probably moved to
      // it. Look now rather than after the primary's breaker back-off.
      void this.#enqueue(this.#nodes[0]!, true);
    }
    if (reason) {
      node.quarantine = { reason, since: now };
      node.health.reset();
      // The monitor is the authority here: the cached position may have to move backwards.
      this.#topology.updateReplica(node.name, {
        replayLsn: lsn,
        clusterId,
        health: 'quarantined',
        circuit: 'closed',
      });
      return;
    }
    if (node.quarantine && now - node.quarantine.since < this.#quarantineMs) {
      this.#topology.updateReplica(node.name, { replayLsn: lsn, clusterId, circuit: 'closed' });
      return;
    }
    node.quarantine = undefined;
    const state = this.#topology.replica(node.name);
    // A per-request check may have moved the cached position past this sample.
    const replayLsn =
      lsn !== null && state?.replayLsn != null && state.replayLsn > lsn ? state.replayLsn : lsn;
    const measured = replayLsn === null ? null : this.#history.lagMs(replayLsn, now);
    // What another measure proves the replica is behind at least (the probe's oldest unseen write).
    const lagMs =
      measured === null || this.#lagFloor === null
        ? measured
        : Math.max(measured, this.#lagFloor(node.name));
    // Caught up with the newest primary sample, the replica lacks at most what the primary
    // wrote since that sample was taken: its lag counts from there, not from now.
    const latestAt = this.#history.latestAt;
    const lagAt =
      measured === 0 && lagMs !== null && latestAt !== null ? Math.min(now, latestAt + lagMs) : now;
    const lagBytes = replayLsn === null ? null : this.#history.lagBytes(replayLsn);
    const health = lagMs === null ? 'unknown' : node.health.observe(lagMs, now);
    // Resting, or woken but not yet measured against a primary position read since.
    const published = !this.#resting && this.#primaryPolledAt >= this.#awakeSince;
    this.#topology.updateReplica(node.name, {
      replayLsn,
      lagMs: published ? lagMs : null,
      lagAt,
      lagBytes,
      clusterId,
      health,
      circuit: 'closed',
    });
  }
}

/**
 * The ancestry of timeline `timeline` from its history file (`pg_wal/0000000N.history`),
 * read with `pg_read_file(text)`: superusers, members of `pg_read_server_files`, or a role
 * granted `EXECUTE ON FUNCTION pg_read_file(text)` may. Without the privilege (or the file)
 * the ancestry is unknown: parent-timeline tokens are then all kept as requirements.
 */
async function readLineage(
  connection: Awaited<ReturnType<ConnectNode>> | undefined,
  systemId: string,
  timeline: number,
): Promise<ClusterLineage> {
  if (timeline <= 1) return { systemId, timeline, ancestors: [] };
  const file = `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
  try {
    const { rows } = await (connection as NonNullable<typeof connection>).query(
      `SELECT pg_read_file('${file}') AS content`,
    );
    const content = rows[0]?.content;
    if (typeof content !== 'string') return { systemId, timeline, ancestors: null };
    return { systemId, timeline, ancestors: parseTimelineHistory(content) };
  } catch {
    return { systemId, timeline, ancestors: null };
  }
}
