import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';

/** Where and with what a run was taken: printed at the top of the generated report. */
export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** CPU pinning used for section 1 (`taskset`), or why not. */
  pinning: string;
  packages: Record<string, string>;
}

const require = createRequire(import.meta.url);

// Some packages (express 5) do not export their package.json: walk up from the entry point.
function packageVersion(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 6; i++) {
      try {
        const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        if (json.name === name) return json.version as string;
      } catch {}
      dir = dirname(dir);
    }
  } catch {}
  return 'unknown';
}

function cpuModel(): string {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const match = /^model name\s*:\s*(.+)$/m.exec(text);
    if (match?.[1]) return match[1].trim();
  } catch {}
  return cpus()[0]?.model ?? 'unknown';
}

function osName(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const match = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(text);
    if (match?.[1]) return `${match[1]} (${process.platform} ${process.arch})`;
  } catch {}
  return `${process.platform} ${process.arch}`;
}

/** `taskset` CPU lists for the server and the load generator, when the machine allows. */
export function cpuPinning(): { server: string[]; load: string[]; note: string } {
  const cores = cpus().length;
  let hasTaskset = false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    hasTaskset = true;
  } catch {}
  if (!hasTaskset || cores < 2) {
    return {
      server: [],
      load: [],
      note: hasTaskset ? 'none (1 core)' : 'none (taskset not available)',
    };
  }
  const last = cores - 1;
  return {
    server: ['taskset', '-c', '0'],
    load: ['taskset', '-c', String(last)],
    note: `server on CPU 0, load generator on CPU ${last} (taskset); PostgreSQL and Redis unpinned`,
  };
}

/** Machine, date and versions of the packages the benchmark exercises. */
export function machineInfo(): MachineInfo {
  const names = [
    '@freshgate/core',
    '@freshgate/pg',
    '@freshgate/redis',
    '@freshgate/express',
    '@freshgate/fastify',
    'express',
    'fastify',
    'pg',
    'ioredis',
    'autocannon',
  ];
  return {
    date: new Date().toISOString(),
    cpuModel: cpuModel(),
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    node: process.version,
    pinning: cpuPinning().note,
    packages: Object.fromEntries(names.map((name) => [name, packageVersion(name)])),
  };
}

/** The 1-minute load average, rounded. */
export function loadAverage(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}
