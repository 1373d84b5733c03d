/**
 * `pnpm bench`: runs the three benchmark sections against a throwaway cluster and rewrites
 * docs/BENCHMARKS.md and its chart. See apps/bench/README.md for the flags.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BARRIER_END,
  BARRIER_START,
  BUDGET_END,
  BUDGET_START,
  ORM_END,
  ORM_START,
  PROFILE_END,
  PROFILE_START,
} from './barrier-markers.js';
import { loadAverage } from './machine.js';
import {
  type BenchReport,
  CHART_FILE,
  checkTargets,
  mergeRuns,
  renderMarkdown,
  replicaShareChart,
} from './report.js';
import { runBench } from './run.js';
import { FULL, QUICK, SECTIONS, type Section } from './settings.js';
import { sleep } from './stats.js';

const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const REPO_DIR = resolve(BENCH_DIR, '..', '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
/** The file beside BENCHMARKS.md that holds the numbers it was rendered from. */
const REPORT_DATA = 'benchmarks.json';
// `pnpm bench` runs in apps/bench; paths on the command line are meant from where it was typed.
const CALLER_DIR = process.env.INIT_CWD ?? process.cwd();

const USAGE = `pnpm bench [--quick] [--only overhead,offload,scaling] [--out DIR] [--no-wait] [--also-on NODE]
pnpm bench --from docs/benchmarks.json [--overhead FILE] [--with-overhead FILE] [--out DIR]

  --quick      short cells, one round, 10 % writes only (about 3 minutes)
  --only LIST  run only these sections (comma-separated)
  --out DIR    where BENCHMARKS.md, the chart and benchmarks.json (its numbers) go
               (default: docs/ for a full run, apps/bench/results/ otherwise)
  --no-wait    start at once even if the machine is busy
  --also-on NODE
               then section 1 again with its servers on another Node.js binary, beside the
               first (what the published report shows: Node.js 20, then 24)
  --from FILE  measure nothing: render the report of an earlier run's numbers
               (apps/bench/results/results.json, or docs/benchmarks.json: the published run)
  --overhead FILE
               with --from: section 1 of a later run's results.json instead of this run's
  --with-overhead FILE
               with --from: add section 1 of another run's results.json (servers on another
               Node.js: BENCH_NODE=/path/to/node pnpm bench --only overhead)
               With either, the report names each run: command, commit, start, duration.`;

function log(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function waitForQuietMachine(): Promise<void> {
  // Other work on the machine skews every number: wait up to a minute for the load to drop.
  const cores = cpus().length;
  for (let i = 0; i < 12 && loadAverage() > cores * 0.5; i++) {
    log(`load average ${loadAverage()} on ${cores} cores: waiting for a quieter machine`);
    await sleep(5_000);
  }
}

/** Only a full run of every section replaces the published results in docs/. */
function defaultOut(full: boolean): string {
  return full ? join(REPO_DIR, 'docs') : RESULTS_DIR;
}

/**
 * Formats the generated files with the repository's own formatter, so that a fresh report
 * passes `pnpm lint` as it is (Biome aligns Markdown tables).
 */
function format(files: string[]): void {
  const biome = join(REPO_DIR, 'node_modules', '.bin', 'biome');
  if (!existsSync(biome)) return;
  try {
    execFileSync(biome, ['format', '--write', ...files], { cwd: REPO_DIR, stdio: 'ignore' });
  } catch {
    log('could not format the report with Biome: run `pnpm format`');
  }
}

/**
 * Keeps the sections `bench:barrier` (src/barrier.ts), `bench:orm` (src/orm.ts),
 * `bench:budget` (src/budget.ts) and `bench:profile` (src/profile.ts) wrote, which
 * `pnpm bench` does not measure.
 */
function withBarrierSection(markdown: string, file: string | undefined): string {
  if (file === undefined || !existsSync(file)) return markdown;
  const old = readFileSync(file, 'utf8');
  for (const [first, last] of [
    [BARRIER_START, BARRIER_END],
    [ORM_START, ORM_END],
    [BUDGET_START, BUDGET_END],
    [PROFILE_START, PROFILE_END],
  ] as const) {
    const start = old.indexOf(first);
    const end = old.indexOf(last);
    if (start < 0 || end < start) continue;
    const section = old.slice(start, end + last.length);
    markdown = markdown.replace('\n## Reading', `\n${section}\n\n## Reading`);
  }
  return markdown;
}

function write(report: BenchReport, out: string): void {
  mkdirSync(out, { recursive: true });
  const files = [join(out, 'BENCHMARKS.md')];
  writeFileSync(
    files[0] as string,
    withBarrierSection(renderMarkdown(report, CHART_FILE), files[0]),
  );
  if (report.offload) {
    files.push(join(out, CHART_FILE));
    writeFileSync(join(out, CHART_FILE), replicaShareChart(report.offload));
  }
  // The numbers this report was rendered from, beside it: `--from` renders it again, and a
  // later run of section 1 (`--overhead`, `--with-overhead`) can be merged with the others
  // without measuring them again. (In results/, results.json is the same.)
  if (out !== RESULTS_DIR) {
    files.push(join(out, REPORT_DATA));
    writeFileSync(join(out, REPORT_DATA), `${JSON.stringify(report, null, 2)}\n`);
  }
  // Partial results stay outside version control and outside the formatter's reach.
  if (out !== RESULTS_DIR && out.startsWith(REPO_DIR)) format(files);
  for (const check of checkTargets(report)) {
    const verdict = check.met ? 'met' : 'MISSED';
    log(`${check.withinNoise ? `${verdict}?` : verdict} ${check.target}: ${check.result}`);
  }
  log(
    `wrote ${relative(CALLER_DIR, join(out, 'BENCHMARKS.md'))} (the run took ${Math.round(report.totalSeconds)} s)`,
  );
}

/** The commit checked out, `-dirty` with uncommitted changes; undefined outside a git checkout. */
function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: REPO_DIR,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') === '' ? '' : '-dirty'}`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      from: { type: 'string' },
      overhead: { type: 'string' },
      'with-overhead': { type: 'string' },
      'also-on': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.from !== undefined) {
    const read = (file: string) => {
      const path = resolve(CALLER_DIR, file);
      if (!existsSync(path)) {
        throw new Error(
          `${path} does not exist: a run writes its numbers to apps/bench/results/results.json, and a full run (\`pnpm bench\`) to docs/benchmarks.json beside the report`,
        );
      }
      return JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
    };
    const report = read(values.from);
    mergeRuns(report, {
      overhead: values.overhead === undefined ? undefined : read(values.overhead),
      withOverhead:
        values['with-overhead'] === undefined ? undefined : read(values['with-overhead']),
    });
    const full =
      report.mode === 'full' && !!report.overhead && !!report.offload && !!report.scaling;
    write(report, values.out ? resolve(CALLER_DIR, values.out) : defaultOut(full));
    return;
  }
  const sections = (values.only?.split(',').map((s) => s.trim()) ?? [...SECTIONS]) as Section[];
  const unknown = sections.filter((s) => !SECTIONS.includes(s));
  if (unknown.length > 0) {
    throw new Error(`unknown section ${unknown.join(', ')}: use ${SECTIONS.join(', ')}\n${USAGE}`);
  }
  const full = !values.quick && values.only === undefined;
  const out = values.out ? resolve(CALLER_DIR, values.out) : defaultOut(full);
  if (!values['no-wait']) await waitForQuietMachine();

  const args = process.argv.slice(2).join(' ');
  // The raw numbers of every run, for `--from` and for anyone who wants other tables; saved
  // after each section too.
  const save = (report: BenchReport) => {
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(join(RESULTS_DIR, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  };
  const common = {
    commit: gitCommit(),
    settings: values.quick ? QUICK : FULL,
    mode: values.quick ? ('quick' as const) : ('full' as const),
    log,
  };
  const report = await runBench({
    ...common,
    sections,
    command: `pnpm bench${args ? ` ${args}` : ''}`,
    checkpoint: save,
  });
  save(report);
  const alsoOn = values['also-on'];
  if (alsoOn !== undefined && sections.includes('overhead')) {
    // Section 1 again, its servers on the other Node.js (the bench and the load generator stay
    // on this one), set beside the first run's.
    const node = resolve(CALLER_DIR, alsoOn);
    process.env.BENCH_NODE = node;
    log(`section 1 again, the servers on ${node}`);
    const again = await runBench({
      ...common,
      sections: ['overhead'],
      command: `BENCH_NODE=${alsoOn} pnpm bench --only overhead`,
    });
    mergeRuns(report, { withOverhead: again });
    save(report);
  }
  write(report, out);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
