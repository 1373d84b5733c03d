import { lineChartSvg } from './chart.js';
import type { MachineInfo } from './machine.js';
import type { OffloadCell, OffloadResult } from './offload.js';
import { PREDICTED_WAIT_ALLOWANCE } from './offload.js';
import {
  type OverheadResult,
  type OverheadSettings,
  pairedMedian,
  resolutionMicros,
  type VariantResult,
  youngGeneration,
} from './overhead.js';
import type { ScalingResult } from './scaling.js';
import { SPA_SCENARIO } from './settings.js';
import { STRATEGY_LABELS, STRATEGY_NAMES, type StrategyName } from './strategies.js';

/** Everything one run of the harness produced. */
export interface BenchReport {
  machine: MachineInfo;
  postgres: string;
  redis: string;
  mode: 'full' | 'quick';
  command: string;
  totalSeconds: number;
  /** The commit measured (`-dirty`: with uncommitted changes); absent in older runs. */
  commit?: string;
  /**
   * The runs a merged report is made of (`--from … --overhead/--with-overhead`), in the order
   * they ran: the "Command, duration" row names each. Absent for a single run.
   */
  runs?: RunPart[];
  overhead?: OverheadResult;
  /** Section 1 again with the servers on another Node.js (`--with-overhead`). */
  overheadOn?: OverheadResult;
  offload?: OffloadResult;
  scaling?: ScalingResult;
}

/** One run of a merged report, and what it contributed. */
export interface RunPart {
  /** What the report takes from it, e.g. `sections 2 and 3`. */
  what: string;
  command: string;
  commit?: string;
  /** When it started (ISO). */
  date: string;
  seconds: number;
  /** The Node.js the measured servers ran on. */
  node: string;
}

/** The part of the report `report` makes when merged into another: its command, commit, time. */
function runPart(report: BenchReport, what: string): RunPart {
  return {
    what,
    command:
      report.runs === undefined ? report.command : report.runs.map((r) => r.command).join('; '),
    commit: report.commit,
    date: report.machine.date,
    seconds: report.totalSeconds,
    node: report.overhead?.serverNode ?? report.machine.node.replace(/^v/, ''),
  };
}

/** The sections of `report` a merged report takes from it, in words. */
function sectionsText(report: BenchReport, withOverhead: boolean): string {
  return sectionList(
    [
      withOverhead && report.overhead ? 1 : null,
      report.offload ? 2 : null,
      report.scaling ? 3 : null,
    ].filter((n) => n !== null),
  );
}

/** `section 2`, `sections 2 and 3`, `sections 1, 2 and 3`. */
function sectionList(numbers: readonly number[]): string {
  if (numbers.length <= 1) return `section ${numbers[0] ?? 'none'}`;
  return `sections ${numbers.slice(0, -1).join(', ')} and ${numbers.at(-1)}`;
}

/**
 * A run of a merged report once another run's section 1 replaces its own: it no longer names
 * section 1, and a run left with no section is dropped (empty). The run of section 1 on the
 * other Node.js is kept: only `withOverhead` replaces it.
 */
function withoutSection1(run: RunPart): RunPart[] {
  if (run.what === 'section 1 again') return [run];
  const numbers = [...run.what.matchAll(/\d/g)].map((m) => Number(m[0])).filter((n) => n !== 1);
  return numbers.length === 0 ? [] : [{ ...run, what: sectionList(numbers) }];
}

/**
 * Merges section 1 of other runs into `report` (`pnpm bench --from … --overhead/--with-overhead`):
 * `overhead` replaces its section 1 (a later run of it), `withOverhead` goes beside it (the
 * servers on another Node.js). `report.runs` then names every run the report is made of.
 */
export function mergeRuns(
  report: BenchReport,
  others: { overhead?: BenchReport | undefined; withOverhead?: BenchReport | undefined },
): BenchReport {
  if (others.overhead === undefined && others.withOverhead === undefined) return report;
  // The report's own run first, taken before its section 1 is replaced.
  let runs = report.runs ?? [runPart(report, sectionsText(report, others.overhead === undefined))];
  if (others.overhead !== undefined) {
    report.overhead = others.overhead.overhead;
    runs = [...runs.flatMap(withoutSection1), runPart(others.overhead, 'section 1')];
  }
  if (others.withOverhead !== undefined) {
    report.overheadOn = others.withOverhead.overhead;
    runs = [
      ...runs.filter((run) => run.what !== 'section 1 again'),
      runPart(others.withOverhead, 'section 1 again'),
    ];
  }
  report.runs = runs;
  return report;
}

function runText(r: RunPart): string {
  const on = r.commit === undefined ? '' : `, on ${r.commit}`;
  return `\`${r.command}\` (${r.what}, Node.js ${r.node}${on}, started ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(r.seconds)} s)`;
}

/** One target of the benchmark issue, checked against the numbers. */
export interface TargetCheck {
  section: string;
  target: string;
  result: string;
  met: boolean;
  /**
   * The verdict is within the run's resolution: moving each figure it compares by the
   * resolution (section 1's A/A pair) could turn it. `met` is then the verdict at face value.
   */
  withinNoise?: boolean;
}

export const CHART_FILE = 'benchmarks-replica-share.svg';
const FRESHGATE: readonly StrategyName[] = [
  'freshgate-token',
  'freshgate-2-instances',
  'freshgate-pin',
  'freshgate-wait',
  'freshgate-predicted',
];

const pct = (x: number, digits = 1) => `${(100 * x).toFixed(digits)} %`;
const num = (x: number | undefined, digits = 0) =>
  x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);
const signed = (x: number | undefined, digits = 0) =>
  x === undefined || Number.isNaN(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

function violations(c: OffloadCell): number {
  return c.readYourWritesViolations + c.monotonicViolations;
}

function variant(o: OverheadResult, framework: string, key: string): VariantResult | undefined {
  return o.variants.find((v) => v.framework === framework && v.key === key);
}

/**
 * Added µs below which section 1 cannot tell a variant from its baseline, for a run without an
 * A/A variant (its resolution on the machine behind docs/design-notes.md).
 */
const NOISE_MICROS = 1;

/** Section 1's resolution for `framework`: from its A/A variant, else `NOISE_MICROS`. */
function resolution(o: OverheadResult, framework: string): { micros: number; measured: boolean } {
  const micros = resolutionMicros(
    variant(o, framework, 'nodb-twin'),
    o.settings.pairs || o.settings.cycles,
  );
  return micros === undefined
    ? { micros: NOISE_MICROS, measured: false }
    : { micros, measured: true };
}

/**
 * Freshgate's added µs as a multiple of the floor's, shown only where the floor adds more than
 * the run's resolution: below that the floor is within the noise of the measurement, and a
 * ratio to it says nothing.
 */
function floorMultipleText(o: OverheadResult, v: VariantResult): string {
  const floor = variant(o, v.framework, `${v.route}-floor`);
  if (v.floorMultiple === undefined || !floor) return '–';
  if (floor.addedMicros < resolution(o, v.framework).micros) return '–';
  return num(v.floorMultiple, 2);
}

/** CPU µs per request, the median of the rounds, each round's in brackets. */
/** The method's words for each server's young generation (nothing for V8's default). */
function youngGenerationNote(mib: number | undefined): string {
  if (!mib) return '';
  return `, with its young generation fixed at ${mib} MiB per semi-space (\`${youngGeneration(mib).join(' ')}\`: V8 otherwise grows it under load, from 1 MiB on Node.js 20, to a size that differs from one start to the next, and the CPU a request costs follows it; the same flags for every variant)`;
}

function cpuText(v: VariantResult): string {
  if (v.cpuMicrosPerRequest === undefined) return '–';
  const rounds = v.roundsCpuMicros.map((x) => (x === undefined ? '–' : num(x, 1))).join(' / ');
  return `${num(v.cpuMicrosPerRequest, 1)} (${rounds})`;
}

/** The issue's targets, each with the measured value and whether it was met. */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const o of [report.overhead, report.overheadOn]) {
    if (!o) continue;
    for (const framework of o.settings.frameworks) {
      // The floor: one header read, one header set, the request run in AsyncLocalStorage.
      // Against it, not against bare hello-world: no middleware that touches a header gets
      // near bare (targets: 1.5 × on Node 24, 2 × on older Node).
      const serverNode = o.serverNode ?? process.versions.node;
      const node24 = Number(serverNode.split('.')[0]) >= 24;
      const maxMultiple = node24 ? 1.5 : 2;
      const floor = variant(o, framework, 'nodb-floor');
      const res = resolution(o, framework);
      for (const [key, name] of [
        ['nodb-none', 'no-token path'],
        ['nodb-token', 'token path (cache warm)'],
      ] as const) {
        const v = variant(o, framework, key);
        if (!v || !floor) continue;
        // A floor below the resolution is compared as if it added the resolution: a multiple
        // of a value that is noise (0 or below, as often as not) says nothing.
        const bar = maxMultiple * Math.max(res.micros, floor.addedMicros);
        const margin = bar - v.addedMicros;
        checks.push({
          section: '1',
          target: `${framework}: ${name} adds ≤ ${maxMultiple} × the floor's µs (Node ${serverNode})`,
          result: `${signed(v.addedMicros, 1)} µs vs the floor's ${signed(floor.addedMicros, 1)} µs${floor.addedMicros < res.micros ? ` (the floor is within the noise: the bar is ${maxMultiple} × ${num(res.micros, 1)} µs)` : `: ${num(v.floorMultiple, 2)} ×`}${res.measured ? `; resolution ±${num(res.micros, 1)} µs (A/A)` : ''}`,
          met: margin >= 0,
          // Each of the two figures may be off by the resolution: the bar by k times it.
          withinNoise: res.measured && Math.abs(margin) < (maxMultiple + 1) * res.micros,
        });
      }
      const item = variant(o, framework, 'item-none');
      if (item) {
        checks.push({
          section: '1',
          target: `${framework}: SELECT route ≥ 85 % of bare req/s (Node ${serverNode})`,
          result: `${pct(item.ratio)} of bare (${signed(item.addedMicros, 1)} µs/request)`,
          met: item.ratio >= 0.85,
        });
      }
      const session = variant(o, framework, 'nodb-session');
      const none = variant(o, framework, 'nodb-none');
      if (session && none) {
        // Round by round (a round's probes run within seconds of each other), the median.
        const extra =
          pairedMedian(session.roundsProbeMicros ?? [], none.roundsProbeMicros ?? []) ??
          (session.probeLatencyMicros !== undefined && none.probeLatencyMicros !== undefined
            ? session.probeLatencyMicros - none.probeLatencyMicros
            : undefined);
        const gets = session.probeRedisGetsPerRequest ?? session.redisGetsPerRequest;
        checks.push({
          section: '1',
          target: `${framework}: pin path makes no more than one Redis round trip`,
          result: `${num(gets, 2)} Redis GET per request`,
          met: gets <= 1.01,
        });
        // Against one GET in a bare route of the same run (the pin path's floor): a round trip
        // timed in a loop of GETs leaves out what the route's process adds around it.
        const get = variant(o, framework, 'redis-get')?.probeAddedMicros;
        const rtt = o.redisRoundTrip.p50Micros;
        checks.push(
          get === undefined
            ? {
                section: '1',
                target: `${framework}: pin path adds no more latency than one Redis round trip`,
                result: `${signed(extra)} µs over the no-token path with one connection; one GET round trip in a tight loop here: p50 ${num(rtt)} µs, p99 ${num(o.redisRoundTrip.p99Micros)} µs`,
                met: extra !== undefined && extra <= rtt,
              }
            : {
                section: '1',
                target: `${framework}: pin path adds ≤ ${maxMultiple} × the latency one Redis GET adds to the bare route (Node ${serverNode})`,
                result: `${signed(extra)} µs over the no-token path with one connection; one GET adds ${signed(get)} µs to the bare route${get > 0 && extra !== undefined ? `: ${num(extra / get, 2)} ×` : ''}`,
                met: extra !== undefined && get > 0 && extra <= maxMultiple * get,
              },
        );
      }
    }
  }
  const off = report.offload;
  if (off) {
    const fgCells = off.cells.filter((c) => FRESHGATE.includes(c.strategy));
    const fgViolations = fgCells.reduce((sum, c) => sum + violations(c), 0);
    checks.push({
      section: '2',
      target: 'freshgate: exactly 0 violations at every lag level',
      result: `${fgViolations} violations in ${fgCells.length} cells (${fgCells.reduce((s, c) => s + c.reads, 0)} checked reads)`,
      met: fgViolations === 0 && fgCells.length > 0,
    });
    // Token-only monotonic reads: no statement after a replica read (the token names the
    // replica); what is left is the primary's (barriers, positions after primary reads).
    const tokenCells = off.cells.filter((c) => c.strategy === 'freshgate-token');
    if (tokenCells.length > 0) {
      const sum = (f: (c: OffloadCell) => number) => tokenCells.reduce((n, c) => n + f(c), 0);
      const replicaReads = Math.round(sum((c) => c.replicaShare * c.reads));
      const after = sum((c) => c.replicaPositionReads ?? Number.NaN);
      const all = sum((c) => c.positionReads ?? Number.NaN);
      const reads = sum((c) => c.reads);
      checks.push({
        section: '2',
        target:
          'freshgate-token: 0 extra statements after a replica read (token-only clients, monotonic reads included), every cell',
        result: `${after} position reads after ${replicaReads} replica reads; on the primary (barriers, positions after primary reads): ${all - after} for ${reads} reads (${num((all - after) / Math.max(1, reads), 3)} per read)`,
        met: after === 0,
      });
    }
    for (const name of FRESHGATE) {
      const cell = off.cells.find(
        (c) => c.strategy === name && c.scenario === '50 ms' && c.writeFraction === 0.1,
      );
      if (!cell) continue;
      checks.push({
        section: '2',
        target: `${name}: ≥ 85 % of reads on replicas at 50 ms lag, 10 % writes`,
        result: pct(cell.replicaShare),
        met: cell.replicaShare >= 0.85,
      });
    }
    // The predicted wait: replicas for reads right after writes, with only an engine-wide
    // allowance; without it (freshgate-token, the default) the same reads go to the primary.
    const spa = (name: StrategyName) =>
      off.cells.find(
        (c) => c.strategy === name && c.scenario === SPA_SCENARIO && c.writeFraction === 0.1,
      );
    const predicted = spa('freshgate-predicted');
    const plain = spa('freshgate-token');
    if (predicted && plain) {
      checks.push({
        section: '2',
        target: `freshgate-predicted (engine waitAllowance ${PREDICTED_WAIT_ALLOWANCE}): ≥ 80 % of reads on replicas at 200 ms lag, reads ≤ 20 ms after writes, 10 % writes; read p99 ≤ 400 ms; 0 violations`,
        result: `${pct(predicted.replicaShare)}, read p50 ${num(predicted.readP50Ms, 1)} ms, p99 ${num(predicted.readP99Ms, 1)} ms, ${violations(predicted)} violations (allowance 0, freshgate-token: ${pct(plain.replicaShare)}, p50 ${num(plain.readP50Ms, 1)} ms, p99 ${num(plain.readP99Ms, 1)} ms)`,
        met:
          predicted.replicaShare >= 0.8 &&
          predicted.readP99Ms <= 400 &&
          violations(predicted) === 0,
      });
    }
    // Two instances behind a balancer without stickiness: a session's tokens cross instances,
    // whose monitors sample the primary at other moments; that must cost neither freshness
    // nor replica reads.
    const pairs = off.cells.filter((c) => c.strategy === 'freshgate-2-instances');
    const singles = off.cells.filter((c) => c.strategy === 'freshgate-token');
    if (pairs.length > 0 && singles.length > 0) {
      const total = pairs.reduce((sum, c) => sum + violations(c), 0);
      // The figure over every cell, each cell weighed by its reads: one 3 s cell of a few
      // thousand reads moves by a few points from run to run on its own.
      const share = (cells: OffloadCell[]) =>
        cells.reduce((sum, c) => sum + c.replicaShare * c.reads, 0) /
        Math.max(
          1,
          cells.reduce((sum, c) => sum + c.reads, 0),
        );
      const two = share(pairs);
      const one = share(singles);
      let worst: { two: OffloadCell; one: OffloadCell; gap: number } | undefined;
      for (const pair of pairs) {
        const single = singles.find(
          (c) => c.scenario === pair.scenario && c.writeFraction === pair.writeFraction,
        );
        if (!single) continue;
        const gap = Math.abs(pair.replicaShare - single.replicaShare);
        if (!worst || gap > worst.gap) worst = { two: pair, one: single, gap };
      }
      checks.push({
        section: '2',
        target:
          'two instances (freshgate-2-instances): 0 violations; replica share within 5 points of one instance (freshgate-token)',
        result: `${total} violations in ${pairs.length} cells (${pairs.reduce((s, c) => s + c.reads, 0)} checked reads); replica share over all cells ${pct(two)} vs ${pct(one)} with one instance${
          worst
            ? `; largest gap in one cell ${num(100 * worst.gap, 1)} points (${worst.two.scenario}, ${pct(worst.two.writeFraction, 0)} writes: ${pct(worst.two.replicaShare)} vs ${pct(worst.one.replicaShare)})`
            : ''
        }`,
        met: total === 0 && Math.abs(two - one) <= 0.05,
      });
    }
    const lowLag = off.settings.scenarios.filter((s) => !s.bursts && s.delayMs <= 500);
    for (const name of FRESHGATE) {
      const losses: string[] = [];
      let compared = 0;
      for (const scenario of lowLag) {
        for (const wf of off.settings.writeFractions) {
          const fg = off.cells.find(
            (c) => c.strategy === name && c.scenario === scenario.label && c.writeFraction === wf,
          );
          const pin = off.cells.find(
            (c) =>
              c.strategy === 'time-pin-2s' &&
              c.scenario === scenario.label &&
              c.writeFraction === wf,
          );
          if (!fg || !pin) continue;
          compared++;
          if (fg.replicaShare <= pin.replicaShare) {
            losses.push(
              `${scenario.label}/${pct(wf, 0)} writes: ${pct(fg.replicaShare)} vs ${pct(pin.replicaShare)}`,
            );
          }
        }
      }
      if (compared === 0) continue;
      checks.push({
        section: '2',
        target: `${name}: more replica reads than the 2 s time pin at every lag ≤ 500 ms`,
        result:
          losses.length === 0
            ? `ahead in ${compared}/${compared} cells`
            : `behind in ${losses.join('; ')}`,
        met: losses.length === 0,
      });
    }
    const pinHigh = off.cells.filter(
      (c) =>
        c.strategy === 'time-pin-2s' &&
        (off.settings.scenarios.find((s) => s.label === c.scenario)?.delayMs ?? 0) >= 2_000,
    );
    if (pinHigh.length > 0) {
      const total = pinHigh.reduce((s, c) => s + violations(c), 0);
      checks.push({
        section: '2',
        target: 'time pin 2 s shows violations at 2 s+ lag',
        result: pinHigh
          .map((c) => `${c.scenario}/${pct(c.writeFraction, 0)}: ${violations(c)}`)
          .join(', '),
        met: total > 0,
      });
    }
    const naive = off.cells.filter((c) => {
      const s = off.settings.scenarios.find((x) => x.label === c.scenario);
      return c.strategy === 'naive-split' && s !== undefined && (s.delayMs > 0 || s.bursts);
    });
    if (naive.length > 0) {
      const clean = naive.filter((c) => violations(c) === 0);
      checks.push({
        section: '2',
        target: 'naive split shows violations at any injected lag',
        result:
          clean.length === 0
            ? `violations in ${naive.length}/${naive.length} cells (${naive.reduce((s, c) => s + violations(c), 0)} in total)`
            : `no violation in ${clean.map((c) => `${c.scenario}/${pct(c.writeFraction, 0)}`).join(', ')}`,
        met: clean.length === 0,
      });
    }
  }
  return checks;
}

function machineSection(r: BenchReport): string {
  const m = r.machine;
  const loads: string[] = [];
  if (r.overhead) loads.push(`section 1: ${r.overhead.loadBefore} → ${r.overhead.loadAfter}`);
  if (r.offload) loads.push(`section 2: ${r.offload.loadBefore} → ${r.offload.loadAfter}`);
  if (r.scaling) loads.push(`section 3: ${r.scaling.loadBefore} → ${r.scaling.loadAfter}`);
  const packages = Object.entries(m.packages)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    '| | |',
    '| --- | --- |',
    `| Date | ${m.date} |`,
    `| CPU | ${m.cpuModel}, ${m.cores} cores |`,
    `| Memory | ${m.memoryGiB} GiB |`,
    `| OS | ${m.os} |`,
    `| Node.js | ${m.node} |`,
    `| PostgreSQL | ${r.postgres} (throwaway harness servers: \`fsync=off\`, loopback) |`,
    `| Redis | ${r.redis} |`,
    `| Packages | ${packages} |`,
    `| CPU pinning (section 1) | ${m.pinning} |`,
    `| Load average (1 min, at start → at end of each section; the end value includes the benchmark's own processes) | ${loads.join('; ')} |`,
    r.runs === undefined
      ? `| Command, duration | \`${r.command}\` (${r.mode}${r.commit === undefined ? '' : `, on ${r.commit}`}), ${Math.round(r.totalSeconds)} s |`
      : `| Commands, durations | ${r.runs.map(runText).join('; then ')} |`,
  ].join('\n');
}

function overheadSection(o: OverheadResult, again = false): string {
  const s = o.settings;
  if (again) {
    const out = [
      `### On Node.js ${o.serverNode}`,
      '',
      `The same variants, settings and targets with the servers on Node.js ${o.serverNode} (\`BENCH_NODE\`); ${o.pinning}.`,
      '',
    ];
    return frameworkTables(o, out, true);
  }
  const paired = (s.pairs ?? 0) > 0;
  const out: string[] = [
    '## 1. Per-request overhead',
    '',
    `Each framework serves the same two routes (the bare app a third, \`/redis\`) on Node.js ${o.serverNode ?? process.versions.node}: bare, with the floor (a middleware or hook that reads one request header, sets one response header and runs the rest of the request in AsyncLocalStorage), and with freshgate mounted, loaded from its build output as an installed package is (the bare app never loads freshgate, whose AsyncLocalStorage would slow every promise of its process); ${o.pinning}. autocannon runs in another process with \`-c ${s.connections} -p ${s.pipelining}\`, ${s.rounds} round${s.rounds === 1 ? '' : 's'}. In each round every variant runs on a server process started for it and warmed up for ${s.warmupSeconds} s on its own load (how much garbage-collection work a process settles on per request depends on what it served before and differs from one start to the next, docs/operations.md, so a process shared between variants or rounds would carry one variant's or one start's luck into the others)${youngGenerationNote(s.semiSpaceMiB)}; the servers of a round run side by side and the load moves from one to the next in slices, ${s.cycles} per variant (each pass over the variants starting one variant further), each slice ${s.rampSeconds} s of load unmeasured and then ${s.durationSeconds} s measured, while the other servers sleep (SIGSTOP: their timers, such as freshgate's replica monitor, would otherwise take a share of the core).${pairsMethod(s) || " Every slice is compared with its baseline's slices right before and after it in the same round (interpolated), and the median of those comparisons counts: the machine slows down by up to 2× for tens of seconds at a time, and a comparison of runs made a minute apart measured that rather than the variants."} \`/nodb\` touches no database; the bare app's \`/redis\` reads one absent key from Redis with the client settings the pin store uses (the least a server-side session lookup adds to a route: the pin path's floor); \`/item/:id\` runs one primary-key SELECT on a random row of ${s.items}, the bare app on a \`pg.Pool\` of the replica, freshgate on the same pool through \`req.db\` (read-your-writes, one replica, so both have the same database capacity). The session variant rotates ${s.sessions} session keys whose pins were written to Redis by another process; the cold variant signs a never-seen token per request; the _req.db only_ variants create the gate with \`asyncContext: false\` (requests run outside AsyncLocalStorage, so \`currentDb()\` and \`RoutedPool\` are off and the process never enables it).${o.variants.some((v) => v.key === 'nodb-twin') ? " The _A/A_ variant is a second bare server: what it adds over the first is the run's noise, and the resolution its targets are read at (a target whose verdict a shift of each compared figure by the resolution could turn is marked _within the noise_)." : ''}${o.variants.some((v) => v.key === 'nodb-floor-gate') ? ' The _floor + a started gate, not mounted_ variant is the floor in a process that also created and started a gate (its monitor polling both nodes, its pin store reporting to Redis) but gives it no route: what a gate costs a process by being there, which the freshgate variants carry too, apart from what it does per request. Routes that read nothing leave the monitor resting (`monitor.idle`: after 10 s without a read, one poll per node a second instead of ten), in this variant and in the freshgate `/nodb` variants alike; on `/item/:id` it polls every 100 ms.' : ''} Then, in every round, each variant runs ${s.probeSeconds} s with one connection and no pipelining, where the mean latency is 1/throughput; what a variant adds to it is the median over the rounds of its difference from its baseline (or from the no-token variant, for the pin path) in the same round.`,
    '',
    `*req/s*: the median of the rounds. *vs bare*: ${paired ? "a slice's req/s over its bare server's, the two loaded at once" : "a slice's req/s over the bare app's on the same route at the same moment"}, the median of the slices. *CPU µs/req*: the server process's CPU time over a round's slices divided by the requests it answered in them, the median of the rounds (each round's in brackets): what a request costs the server, whether or not the load generator kept it busy all the time. *GC µs/req*: garbage-collection pauses per request, the median of the rounds. *added µs*: ${paired ? "a slice's CPU µs/req minus the baseline's (bare on the same route) over the same seconds, the two loaded at once" : "a slice's CPU µs/req minus the baseline's (bare on the same route) at the same moment"}, the median of the slices of all rounds. *× floor*: added µs as a multiple of the floor's on the same route, in the same run (the floor reads one request header, sets one response header and runs the rest of the request in AsyncLocalStorage: the least any middleware that touches a header and carries a request context adds). *server CPU*: of the one core the server is pinned to, which it shares with the unpinned PostgreSQL, Redis and anything else running. *1-conn latency*: mean latency with one connection and no pipelining, probed in every round after its loaded slices, the median of the rounds. *Δ 1-conn µs*: the median of each round's difference from the baseline's probe (a round's probes run within seconds of each other). *Redis GET/req*: from Redis' command counters, in the one-connection runs, less the GET that Redis counts inside each pin write's script (refreshes, and write-backs of those that failed under saturation: the server counts both). What these figures can resolve on this machine (the noise from one round to the next, what the token's header costs Express, the idle cost of a started gate): [design notes](design-notes.md#what-section-1-can-resolve).`,
    '',
  ];
  return frameworkTables(o, out, false);
}

/**
 * How section 1 measured what a variant adds, where it loaded each variant at once with its
 * baseline (a sentence of the method, with its leading space), else nothing.
 */
function pairsMethod(s: OverheadSettings): string {
  const pairs = s.pairs ?? 0;
  if (pairs === 0) return '';
  const warmup = s.pairWarmupSeconds ?? 0;
  return ` What a variant adds, and its req/s against bare, come from ${pairs} more slice${pairs === 1 ? '' : 's'} per variant and round, before the slices in turn, each loading it at once with a bare server of its own (${s.rampSeconds} s unmeasured, ${s.durationSeconds} s measured; which of the two loads starts first turns around from one to the next), both servers on the server core and the others asleep: over the same seconds the machine is as fast for one as for the other, so the difference of their CPU per request no longer carries its slow spells (the machine slows down by up to 2× for tens of seconds at a time, and slices in turn, each compared with its baseline's slices right before and after it, put two identical servers up to ±10 µs apart on a slow host). The slices in turn give req/s, CPU µs/req, latencies and the rest. The bare server is the variant's own${warmup > 0 ? `, warmed up at once with it for ${warmup} s` : ''}, so that both have served the same load: a process that has served more costs more per request.`;
}

function frameworkTables(o: OverheadResult, out: string[], again: boolean): string {
  const s = o.settings;
  for (const framework of s.frameworks) {
    out.push(
      `${again ? '####' : '###'} ${framework}${again ? ` on Node.js ${o.serverNode}` : ''}`,
      '',
      '| route | variant | req/s | rounds | vs bare | CPU µs/req | GC µs/req | added µs | × floor | p50 ms | p99 ms | Δp99 ms | server CPU | 1-conn latency µs | Δ 1-conn µs | Redis GET/req (1 conn) |',
      '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const v of o.variants.filter((x) => x.framework === framework)) {
      const base = v.key === 'nodb-bare' || v.key === 'item-bare';
      out.push(
        `| \`/${v.route === 'item' ? 'item/:id' : v.route}\` | ${v.label} | ${num(v.requestsPerSecond)} | ${v.rounds.map((x) => num(x)).join(' / ')} | ${base ? '1' : pct(v.ratio)} | ${cpuText(v)} | ${v.gcMicrosPerRequest === undefined ? '–' : num(v.gcMicrosPerRequest, 1)} | ${base ? '–' : signed(v.addedMicros, 1)} | ${floorMultipleText(o, v)} | ${num(v.p50Ms)} | ${num(v.p99Ms)} | ${base ? '–' : signed(v.deltaP99Ms)} | ${v.serverCpuPercent === undefined ? '–' : `${num(v.serverCpuPercent)} %`} | ${num(v.probeLatencyMicros)} | ${base ? '–' : signed(v.probeAddedMicros)} | ${num(v.probeRedisGetsPerRequest ?? v.redisGetsPerRequest, 2)} |`,
      );
    }
    out.push('');
    const errors = o.variants
      .filter((x) => x.framework === framework)
      .reduce((sum, x) => sum + x.errors + x.non2xx, 0);
    const twin = variant(o, framework, 'nodb-twin');
    const res = resolution(o, framework);
    if (twin && res.measured)
      out.push(
        `Resolution: ±${num(res.micros, 1)} µs per request. The A/A pair (two bare servers, loaded alike) differed by ${signed(twin.addedMicros, 1)} µs (the median of ${twin.slicesAddedMicros.length} slices, from ${signed(Math.min(...twin.slicesAddedMicros), 1)} to ${signed(Math.max(...twin.slicesAddedMicros), 1)}); the resolution is the larger of that and twice the standard error of the median, from the spread of the rounds (the slices' with fewer than 3 rounds). An added µs, or a difference between two of them, within it says nothing.`,
        '',
      );
    const session = variant(o, framework, 'nodb-session');
    if (errors > 0) out.push(`${errors} errors or non-2xx responses over the rounds.`, '');
    if (session && session.pinReadFailureShare > 0) {
      out.push(
        `Under saturation ${pct(session.pinReadFailureShare)} of the pin reads of the session variant failed (store timeout or open circuit; Redis GET/req under load: ${num(session.redisGetsPerRequest, 2)}): with ${s.connections * s.pipelining} requests in flight on one core, a Redis reply can wait longer than the store's 50 ms timeout in the event loop, the breaker opens, and those requests are routed as if the pin were unknown (\`onStoreError: 'primary'\`). The one-connection run measures the pin path itself.`,
        '',
      );
    }
  }
  out.push(
    `Redis GET round trip from this process (ioredis with the recommended settings, 1 800 sequential GETs): p50 ${num(o.redisRoundTrip.p50Micros)} µs, p99 ${num(o.redisRoundTrip.p99Micros)} µs. Section time: ${Math.round(o.seconds)} s.`,
    '',
  );
  return out.join('\n');
}

function offloadSection(off: OffloadResult, chartPath: string): string {
  const s = off.settings;
  const out: string[] = [
    '## 2. Primary offload and correctness under lag',
    '',
    `${s.sessions} concurrent sessions in one process, each looping create → read own record → update → read → list, plus reads of other sessions' records (a feed), with a write fraction of ${s.writeFractions.map((w) => pct(w, 0)).join(', ')}. After a write the next request follows within 0–${s.afterWriteMs} ms (the redirect that shows the result), otherwise after 0–${s.thinkMs} ms of think time. Each cell runs ${s.cellMs / 1000} s per strategy on the same pools (${s.poolSize} connections per node, all opened before each cell and kept: a pool that opens its connections during a cell's first burst adds connection starts to that cell's read p99); strategies run one after the other in each scenario. Lag is injected with \`recovery_min_apply_delay\` on both replicas, or as pause/resume bursts (one replica paused at a time); a background writer commits ${s.backgroundWritesPerSecond} small transactions per second on the primary throughout, so that replicas sit at their steady lag when a cell starts. Strategies:`,
    '',
    ...STRATEGY_NAMES.filter((n) => s.strategies.includes(n)).map(
      (n) => `- \`${n}\`: ${STRATEGY_LABELS[n]}`,
    ),
    '',
    "The freshgate strategies drive the engine as the adapters do (one `begin()` per request, no HTTP): own records are read under `read-your-writes`, other sessions' records under `monotonic`; `budget: false` (no primary fallback limit, as the other strategies have none). `freshgate-token` clients send back the newest token they received; `freshgate-2-instances` is the same behind a balancer without stickiness: two freshgate instances (one secret, one Redis pin store, each with its own monitor and with pools of half the size) take a session's requests in turn, so the token a client sends back was, as a rule, issued by the other instance; `freshgate-pin` clients never send a token and rely on the Redis pin of their session key.",
    '',
    "Every read is checked by the black-box `HistoryChecker` (`test/harness/history-checker.ts`): a read-your-writes violation is a read that starts after the session's acknowledged write of a record and returns an older version; a monotonic violation is a read returning a version lower than one the session already saw. *Primary stmt/s* counts every statement sent to the primary (freshgate's commit-LSN reads and read bounds included, monitor polls excluded), relative to `all-primary` in the same scenario and write fraction. Latencies are of reads (ms). *health*: replica health as freshgate's monitor saw it when the cell started.",
    '',
    `![Replica share of reads per strategy and injected lag](${chartPath})`,
    '',
  ];
  for (const wf of s.writeFractions) {
    out.push(`### ${pct(wf, 0)} writes`, '');
    for (const scenario of s.scenarios) {
      const cells = off.cells.filter(
        (c) => c.scenario === scenario.label && c.writeFraction === wf,
      );
      if (cells.length === 0) continue;
      const what = scenario.bursts
        ? `pause/resume bursts (${scenario.bursts.pauseMs} ms paused, ${scenario.bursts.runMs} ms running, replicas in turn)`
        : `apply delay ${scenario.delayMs} ms`;
      out.push(
        `**Lag: ${scenario.label}** — ${what}; health: ${cells[0]?.replicaHealth ?? '–'}`,
        '',
        '| strategy | replica reads | RYW violations | monotonic violations | primary stmt/s (vs all-primary) | position reads / read | read p50 ms | read p99 ms | ops/s | reads checked | errors |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      for (const c of cells) {
        out.push(
          `| \`${c.strategy}\` | ${pct(c.replicaShare)} | ${c.readYourWritesViolations} | ${c.monotonicViolations} | ${num(c.primaryStatementsPerSecond)} (${c.primaryRelative === undefined ? '–' : `${num(c.primaryRelative, 2)}×`}) | ${c.positionReads === undefined || c.reads === 0 ? '–' : num(c.positionReads / c.reads, 3)} | ${num(c.readP50Ms, 1)} | ${num(c.readP99Ms, 1)} | ${num(c.operationsPerSecond)} | ${c.reads} | ${c.errors} |`,
        );
      }
      out.push('');
    }
  }
  out.push(`Section time: ${Math.round(off.seconds)} s.`, '');
  return out.join('\n');
}

function scalingSection(sc: ScalingResult): string {
  const s = sc.settings;
  const nodes = [...new Set(sc.rows.flatMap((r) => Object.keys(r.share)))];
  const out: string[] = [
    '## 3. Read scaling',
    '',
    `${s.clients} clients run a CPU-bound read (\`SELECT count(*) FROM generate_series(1, ${s.seriesRows})\`, ${num(sc.queryMs, 1)} ms alone on an idle primary) through freshgate under \`read-your-writes\` for ${s.durationMs / 1000} s, closed loop. Every node gets ${s.connectionsPerNode} connection${s.connectionsPerNode === 1 ? '' : 's'}, so a node can use at most ${s.connectionsPerNode === 1 ? 'one core' : `${s.connectionsPerNode} cores`}: with no replica the primary is saturated. On a ${sc.rows.length > 0 ? '' : ''}machine with few cores this is how nodes are made separate capacity; every node, the load driver and the monitor still share the same cores, so the ceiling is the machine, not the number of replicas.`,
    '',
    `| replicas | selection | reads/s | vs no replica | p50 ms | p99 ms | ${nodes.map((n) => `${n} share`).join(' | ')} | errors |`,
    `| ---: | --- | ---: | ---: | ---: | ---: | ${nodes.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const r of sc.rows) {
    out.push(
      `| ${r.replicas} | \`${r.selection}\` | ${num(r.readsPerSecond)} | ${num(r.speedup, 2)}× | ${num(r.p50Ms, 1)} | ${num(r.p99Ms, 1)} | ${nodes.map((n) => (r.share[n] === undefined ? '–' : pct(r.share[n] as number, 0))).join(' | ')} | ${r.errors} |`,
    );
  }
  out.push('', `Section time: ${Math.round(sc.seconds)} s.`, '');
  return out.join('\n');
}

/** ` (± the resolution)` for a run with an A/A pair, else nothing. */
function resolutionNote(o: OverheadResult, framework: string): string {
  const res = resolution(o, framework);
  return res.measured ? ` (±${num(res.micros, 1)}, this run's resolution)` : '';
}

function reading(r: BenchReport, checks: TargetCheck[]): string {
  const out: string[] = ['## Reading', ''];
  const o = r.overhead;
  if (o) {
    for (const framework of o.settings.frameworks) {
      const get = (k: string) => variant(o, framework, k);
      const none = get('nodb-none');
      const token = get('nodb-token');
      const cold = get('nodb-cold');
      const session = get('nodb-session');
      const redisGet = get('redis-get');
      const item = get('item-none');
      if (!none || !token || !cold || !session || !item) continue;
      out.push(
        `- **${framework}**: on a route that does nothing, freshgate costs ${num(none.addedMicros, 1)} µs of server CPU per request${resolutionNote(o, framework)} without token or session, ${num(token.addedMicros, 1)} µs with a cached token, ${num(cold.addedMicros, 1)} µs when the token must be verified (HS256), and ${num(session.addedMicros, 1)} µs with a Redis pin read${redisGet ? ` (one Redis GET costs a bare route ${num(redisGet.addedMicros, 1)} µs)` : ''}; that is ${pct(none.ratio, 0)} / ${pct(token.ratio, 0)} / ${pct(cold.ratio, 0)} / ${pct(session.ratio, 0)} of bare throughput. A route that runs one SELECT keeps ${pct(item.ratio, 0)} of bare throughput (${signed(item.addedMicros, 1)} µs per request). The smaller the handler, the larger the share: these are upper bounds for real routes.`,
      );
    }
  }
  const off = r.offload;
  if (off) {
    const at = (strategy: StrategyName, scenario: string, wf = 0.1) =>
      off.cells.find(
        (c) => c.strategy === strategy && c.scenario === scenario && c.writeFraction === wf,
      );
    const token50 = at('freshgate-token', '50 ms');
    const pin50 = at('time-pin-2s', '50 ms');
    const naive50 = at('naive-split', '50 ms');
    if (token50 && pin50 && naive50) {
      out.push(
        `- At 50 ms of lag and 10 % writes, freshgate with tokens served ${pct(token50.replicaShare, 0)} of reads from replicas with ${violations(token50)} violations; the 2 s time pin ${pct(pin50.replicaShare, 0)} with ${violations(pin50)}; the naive split ${pct(naive50.replicaShare, 0)} with ${violations(naive50)} (${naive50.readYourWritesViolations} reads missed the session's own write).`,
      );
    }
    const others = (scenario: string) => {
      const pin = at('time-pin-2s', scenario);
      const naive = at('naive-split', scenario);
      return pin && naive
        ? `In the same cell the time pin read ${pct(pin.replicaShare, 0)} from replicas with ${violations(pin)} violations, the naive split ${pct(naive.replicaShare, 0)} with ${violations(naive)}.`
        : '';
    };
    const high = off.settings.scenarios.filter((s) => !s.bursts && s.delayMs >= 2_000);
    for (const scenario of high) {
      const fg = at('freshgate-token', scenario.label);
      if (!fg) continue;
      out.push(
        `- At ${scenario.label} of lag (10 % writes) freshgate read ${pct(1 - fg.replicaShare, 0)} from the primary rather than serve the past: the monitor takes a replica out of rotation after 1 s above 2 s of lag (default hysteresis). ${others(scenario.label)}`,
      );
    }
    const token500 = at('freshgate-token', '500 ms');
    const wait500 = at('freshgate-wait', '500 ms');
    if (token500 && wait500) {
      out.push(
        `- At 500 ms of lag, reads that need a session's newest write cannot be served by a replica for half a second: freshgate sends them to the primary (${pct(token500.replicaShare, 0)} replica reads with tokens) or, with \`{ wait: 50 }\`, first waits up to 50 ms for a replica (${pct(wait500.replicaShare, 0)} replica reads, read p50 ${num(wait500.readP50Ms, 1)} ms). Under \`monotonic\` a read that fell back to the primary raises the session's floor to the primary's position, so the session's next reads need a replica that caught up with it too.`,
      );
    }
    const relative = off.cells.filter(
      (c) =>
        FRESHGATE.includes(c.strategy) && c.primaryRelative !== undefined && c.primaryRelative > 1,
    );
    if (relative.length > 0) {
      out.push(
        `- In ${relative.length} freshgate cell(s) the primary received more statements than with all reads on the primary: every freshgate write costs two statements (the write, then its commit LSN), and a \`monotonic\` read on the primary by a token-only client is followed by a position read. These extra statements read a WAL position, one round trip each.`,
      );
    }
  }
  const sc = r.scaling;
  if (sc) {
    const base = sc.rows.find((x) => x.replicas === 0);
    const best = [...sc.rows].sort((a, b) => b.readsPerSecond - a.readsPerSecond)[0];
    const lag2 = sc.rows.find((x) => x.replicas === 2 && x.selection === 'least-lag');
    if (base && best) {
      out.push(
        `- Scaling: with no replica the saturated primary served ${num(base.readsPerSecond)} reads/s; the best configuration (${best.replicas} replica(s), \`${best.selection}\`) ${num(best.readsPerSecond)} reads/s (${num(best.speedup, 2)}×), with the primary serving ${pct(best.share.primary ?? 0, 0)} of reads.`,
      );
    }
    if (lag2 && (lag2.share.r2 ?? 0) < 0.05) {
      out.push(
        "- With the default selection `least-lag` and two equally fresh replicas, reads went almost only to the first replica (ties are not spread), so the second replica added no capacity; `selection: 'least-in-flight'` spreads them.",
      );
    }
  }
  const missed = checks.filter((c) => !c.met);
  const noise = checks.filter((c) => c.withinNoise);
  out.push(
    '',
    missed.length === 0
      ? 'Every target was met in this run.'
      : `Targets missed in this run: ${missed.map((c) => `${c.target} (${c.result})`).join('; ')}.`,
  );
  if (noise.length > 0)
    out.push(
      '',
      `Verdicts this run cannot resolve (each figure compared may be off by the resolution its A/A pair of bare servers measured, and that could turn them): ${noise.map((c) => `${c.target} (${c.met ? 'met' : 'missed'} at face value)`).join('; ')}.`,
    );
  out.push('');
  return out.join('\n');
}

/** The SVG chart of replica share per strategy and lag (write fraction 10 %, or the first). */
export function replicaShareChart(off: OffloadResult): string {
  const wf = off.settings.writeFractions.includes(0.1)
    ? 0.1
    : (off.settings.writeFractions[0] ?? 0);
  const categories = off.settings.scenarios.map((s) => s.label);
  return lineChartSvg({
    title: 'Share of reads served by replicas',
    subtitle: `${off.settings.sessions} sessions, ${pct(wf, 0)} writes, ${off.settings.cellMs / 1000} s per cell`,
    xLabel: 'injected replica lag',
    yLabel: 'reads served by replicas',
    categories,
    series: off.settings.strategies.map((name) => ({
      name,
      values: categories.map(
        (label) =>
          off.cells.find(
            (c) => c.strategy === name && c.scenario === label && c.writeFraction === wf,
          )?.replicaShare,
      ),
    })),
  });
}

/** A target's verdict in the targets table. */
export function verdictText(c: TargetCheck): string {
  const verdict = c.met ? 'yes' : '**no**';
  return c.withinNoise ? `${verdict} (within the noise)` : verdict;
}

/** The Markdown of `docs/BENCHMARKS.md`. */
export function renderMarkdown(report: BenchReport, chartPath = CHART_FILE): string {
  const checks = checkTargets(report);
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `pnpm bench` (apps/bench). Do not edit: re-run it. -->',
    '',
    'What freshgate costs per request, how many reads it takes off the primary without stale reads, and how replicas become read capacity — measured side by side in one run on the machine below. Re-run with `pnpm bench` (see `apps/bench/README.md`); numbers from another machine, or from this one under other load, will differ.',
    '',
    '## Machine and run',
    '',
    machineSection(report),
    '',
    '## Targets',
    '',
    '| § | target | measured | met |',
    '| --- | --- | --- | :---: |',
    ...checks.map((c) => `| ${c.section} | ${c.target} | ${c.result} | ${verdictText(c)} |`),
    '',
  ];
  if (report.overhead) out.push(overheadSection(report.overhead));
  if (report.overheadOn) out.push(overheadSection(report.overheadOn, true));
  if (report.offload) out.push(offloadSection(report.offload, chartPath));
  if (report.scaling) out.push(scalingSection(report.scaling));
  out.push(reading(report, checks));
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
