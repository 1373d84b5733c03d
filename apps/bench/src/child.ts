import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** How a child runs: `profile` writes a V8 CPU profile to `$BENCH_CPU_PROF` when that is set; `built` loads freshgate from its build output (`dist/`), as users do. */
export interface ChildOptions {
  profile?: boolean;
  built?: boolean;
  /** The Node.js binary (default: `BENCH_NODE` for built children, else this one). */
  node?: string;
  /** Node.js flags before the script. */
  nodeFlags?: string[];
  /**
   * Runs the child in a session (and process group) of its own. A child the bench stops with
   * SIGSTOP needs it: when a process exits and leaves a group orphaned that has a stopped
   * member (the shell that started a `nohup pnpm bench &` exits, a load generator of a bench
   * started with `setsid` ends), the kernel sends every member of that group SIGHUP, which
   * ends the bench and all its children. Alone in its group, a stopped child is sent it only
   * once the bench is gone.
   */
  detached?: boolean;
}

/** Starts `file` (a .ts file of this app) with tsx, optionally under `taskset`. */
export function spawnTs(
  file: string,
  env: Record<string, string>,
  pin: string[],
  options: ChildOptions = {},
): ChildProcess {
  const script = fileURLToPath(new URL(file, import.meta.url));
  const dir = process.env.BENCH_CPU_PROF;
  const prof = options.profile && dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  const built = options.built
    ? ['--import', fileURLToPath(new URL('./built-output.mjs', import.meta.url))]
    : [];
  // BENCH_NODE: another Node.js binary for the children (e.g. Node 24 beside a Node 20 bench).
  const node = options.node ?? ((options.built && process.env.BENCH_NODE) || process.execPath);
  const flags = options.nodeFlags ?? [];
  const argv = [...pin, node, ...flags, ...prof, ...built, '--import', 'tsx', script];
  return spawn(argv[0] as string, argv.slice(1), {
    cwd: BENCH_DIR,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
}

/** Calls `onLine` for each line the stream emits. */
export function lines(
  stream: NodeJS.ReadableStream | null | undefined,
  onLine: (line: string) => void,
): void {
  let buffer = '';
  stream?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let index = buffer.indexOf('\n');
    while (index >= 0) {
      onLine(buffer.slice(0, index));
      buffer = buffer.slice(index + 1);
      index = buffer.indexOf('\n');
    }
  });
}

/**
 * CPU seconds a process has used, from /proc; `undefined` elsewhere. The run time of each of
 * its threads in nanoseconds (`schedstat`) where the kernel keeps it: user + system time in
 * `stat` comes in clock ticks of 10 ms, about 1 % of a 2-second slice's CPU time.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let nanos = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        nanos += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch (error) {
        // A thread that ended between the listing and the read.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    if (Number.isFinite(nanos) && nanos > 0) return nanos / 1e9;
  } catch {
    // No schedstat (a kernel without it): the clock ticks below.
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, 12 and 13 here; in clock ticks (100 Hz).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
