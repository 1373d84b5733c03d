import type { Lab, ReplicaLabState } from './lab.js';

/** How far back the dashboard's lag chart goes. */
export const LAG_HISTORY_WINDOW_MS = 180_000;
/** How often the monitor's view of each replica is recorded. */
export const LAG_HISTORY_INTERVAL_MS = 500;

/** One replica at one moment, as the monitor (and, in lab mode, the replica itself) saw it. */
export interface LagPoint {
  /** Epoch ms. */
  t: number;
  /** Measured lag; null while the monitor cannot tell (replica down, not yet polled). */
  lagMs: number | null;
  health: string;
  /** Replay paused or pause requested (lab mode only; null when unknown). */
  paused: boolean | null;
}

/** What `GET /api/freshgate/lag` answers. */
export interface LagHistoryView {
  windowMs: number;
  intervalMs: number;
  now: number;
  replicas: Record<string, LagPoint[]>;
  /** Each replica's pause state and apply delay, read back from it (lab mode), or null. */
  lab: ReplicaLabState[] | null;
}

type MonitorView = () => {
  replicas: readonly { name: string; lagMs: number | null; health: string }[];
};

/**
 * The replica lag the monitor measured over the last {@link LAG_HISTORY_WINDOW_MS}, recorded
 * in the server from start-up, so that a dashboard opened after a lag episode still shows it.
 * In lab mode each replica's pause state and apply delay are read from the replica as well.
 */
export class LagHistory {
  readonly #monitor: MonitorView;
  readonly #lab: Lab | undefined;
  readonly #points = new Map<string, LagPoint[]>();
  #labStates: ReplicaLabState[] | null = null;
  #labReading = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(monitor: MonitorView, lab: Lab | undefined) {
    this.#monitor = monitor;
    this.#lab = lab;
  }

  start(): void {
    this.record();
    this.#timer = setInterval(() => this.record(), LAG_HISTORY_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Records one point per replica now (and starts a read of the lab state). */
  record(now = Date.now()): void {
    if (this.#lab && !this.#labReading) {
      this.#labReading = true;
      this.#lab
        .states()
        .then(
          (states) => {
            this.#labStates = states;
          },
          () => {},
        )
        .finally(() => {
          this.#labReading = false;
        });
    }
    for (const replica of this.#monitor().replicas) {
      const points = this.#points.get(replica.name) ?? [];
      const lab = this.#labStates?.find((s) => s.replica === replica.name);
      points.push({
        t: now,
        lagMs: replica.lagMs,
        health: replica.health,
        paused: lab === undefined ? null : lab.replay !== 'running',
      });
      while (points.length > 0 && points[0]!.t < now - LAG_HISTORY_WINDOW_MS) points.shift();
      this.#points.set(replica.name, points);
    }
  }

  /** Replaces the lab state after a lab action, which answers with the state it read back. */
  labChanged(state: ReplicaLabState): void {
    if (this.#labStates === null) return;
    this.#labStates = [...this.#labStates.filter((s) => s.replica !== state.replica), state].sort(
      (a, b) => a.replica.localeCompare(b.replica),
    );
  }

  toJSON(): LagHistoryView {
    return {
      windowMs: LAG_HISTORY_WINDOW_MS,
      intervalMs: LAG_HISTORY_INTERVAL_MS,
      now: Date.now(),
      replicas: Object.fromEntries(this.#points),
      lab: this.#labStates,
    };
  }
}
