import type { OffloadSettings } from './offload.js';
import type { OverheadSettings } from './overhead.js';
import type { ScalingSettings } from './scaling.js';
import { STRATEGY_NAMES } from './strategies.js';

/** The three sections, in run order. */
export const SECTIONS = ['overhead', 'offload', 'scaling'] as const;
export type Section = (typeof SECTIONS)[number];

/** Settings of every section for one kind of run. */
export interface BenchSettings {
  items: number;
  overhead: OverheadSettings;
  offload: OffloadSettings;
  scaling: ScalingSettings;
}

const ITEMS = 1_000;

/** The section 2 scenario where reads follow writes within 20 ms, at 200 ms of lag. */
export const SPA_SCENARIO = '200 ms, reads ≤ 20 ms after writes';

/**
 * `pnpm bench`: about 55 minutes on 2 cores, section 1 about 40 of them (2 frameworks × 3 rounds
 * of about 6.5 minutes); `--also-on` runs section 1 again.
 */
export const FULL: BenchSettings = {
  items: ITEMS,
  overhead: {
    frameworks: ['express', 'fastify'],
    connections: 100,
    pipelining: 10,
    durationSeconds: 2,
    cycles: 2,
    // What a variant adds, from slices loaded at once with its baseline: an A/A pair of bare
    // Fastify servers differed by −0.6 to +0.4 µs from round to round this way (6 rounds of 4
    // such slices, the resolution ±0.25 µs), and by −10.6 to +10.2 µs from slice to slice in turn.
    pairs: 2,
    // At half the core each: about as many requests as 4 s alone. A pair measured after 3 s
    // alone and a 1 s ramp cost more than the same pair 3 s later (floor +11 to +18 µs against
    // +6 on Express, Node.js 24).
    pairWarmupSeconds: 8,
    rampSeconds: 1,
    // Each round's A/A pair and the spread of the rounds give the resolution printed beside the
    // tables. With 3 rounds it was ±0.2 µs for Fastify on Node.js 24 on a quiet machine, ±0.7
    // to ±2.4 µs in the published run (a slow spell; ±30 µs for Express on Node.js 20, slow in
    // itself there); a published run (section 1 on two Node.js versions) takes about 77 minutes.
    rounds: 3,
    warmupSeconds: 3,
    // V8 grows a server's young generation under load to a size that changes from one start to
    // the next: in section 1 on Node.js 20, bare Express's CPU per request spread over 12.2 µs
    // from round to round with V8's default (71.5 to 83.7 µs), 2.8 µs with this (67.4 to 70.2);
    // the floor it is compared with adds 2 to 4 µs.
    semiSpaceMiB: 64,
    // Every round probes every variant: 2 s each, a round's probes within half a minute.
    probeSeconds: 2,
    markDelayMs: 200,
    amount: 0,
    variants: [],
    items: ITEMS,
    sessions: 100,
  },
  offload: {
    scenarios: [
      { label: '0 ms', delayMs: 0 },
      { label: '50 ms', delayMs: 50 },
      // A single-page app: the page reloads right after each write.
      { label: SPA_SCENARIO, delayMs: 200, afterWriteMs: 20 },
      { label: '500 ms', delayMs: 500 },
      { label: '2 s', delayMs: 2_000 },
      { label: '3 s', delayMs: 3_000 },
      { label: 'pause bursts', delayMs: 0, bursts: { pauseMs: 1_000, runMs: 500 } },
    ],
    writeFractions: [0.01, 0.1, 0.3],
    strategies: STRATEGY_NAMES,
    sessions: 200,
    cellMs: 3_000,
    thinkMs: 500,
    afterWriteMs: 100,
    poolSize: 20,
    backgroundWritesPerSecond: 20,
  },
  scaling: {
    configs: [
      { replicas: 0, selection: 'least-lag' },
      { replicas: 1, selection: 'least-lag' },
      { replicas: 2, selection: 'least-lag' },
      { replicas: 2, selection: 'least-in-flight' },
    ],
    clients: 8,
    durationMs: 5_000,
    connectionsPerNode: 1,
    seriesRows: 100_000,
  },
};

/** `pnpm bench --quick`: every section, short cells, 10 % writes only; about 3 minutes. */
export const QUICK: BenchSettings = {
  ...FULL,
  overhead: {
    ...FULL.overhead,
    durationSeconds: 1,
    cycles: 2,
    rampSeconds: 0.5,
    rounds: 1,
    warmupSeconds: 1,
    pairWarmupSeconds: 2,
    probeSeconds: 1,
  },
  offload: {
    ...FULL.offload,
    scenarios: FULL.offload.scenarios.filter((s) => s.label !== '3 s'),
    writeFractions: [0.1],
    cellMs: 1_500,
  },
  scaling: { ...FULL.scaling, durationMs: 2_000 },
};

/**
 * The smoke run of the test suite: seconds, not measurements. The offload part keeps one
 * replica paused for the whole cell, so that the naive split must record violations.
 */
export const SMOKE: BenchSettings = {
  items: 100,
  overhead: {
    ...FULL.overhead,
    connections: 10,
    pipelining: 1,
    durationSeconds: 0.3,
    // One slice in turn, two at once (the A/A pair's resolution needs two): the test tells
    // the added µs of the pairs from those of the slices in turn by their count.
    cycles: 1,
    pairs: 2,
    pairWarmupSeconds: 0,
    // Runs of a fixed number of requests: measured whole.
    rampSeconds: 0,
    rounds: 1,
    warmupSeconds: 0,
    probeSeconds: 0.3,
    markDelayMs: 50,
    amount: 200,
    // Autocannon runs last at least a second: the smoke run keeps the variants with state, and
    // the A/A pair the report reads its resolution from.
    variants: ['nodb-twin', 'nodb-floor-gate', 'nodb-session', 'redis-get', 'item-token'],
    items: 100,
    sessions: 5,
  },
  offload: {
    ...FULL.offload,
    scenarios: [{ label: 'paused', delayMs: 0, bursts: { pauseMs: 60_000, runMs: 0 } }],
    writeFractions: [0.3],
    strategies: ['all-primary', 'naive-split', 'freshgate-token', 'freshgate-2-instances'],
    sessions: 20,
    cellMs: 1_000,
    thinkMs: 50,
    afterWriteMs: 10,
    poolSize: 5,
    backgroundWritesPerSecond: 10,
  },
  scaling: {
    ...FULL.scaling,
    configs: [
      { replicas: 0, selection: 'least-lag' },
      { replicas: 2, selection: 'least-in-flight' },
    ],
    clients: 4,
    durationMs: 600,
    seriesRows: 10_000,
  },
};
