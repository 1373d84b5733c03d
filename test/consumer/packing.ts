// Packs the publishable packages as `pnpm publish` would and checks what a consumer would get:
// shared by `pnpm release:check` and the consumer test.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const require = createRequire(import.meta.url);

/** A manifest field this code reads. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [field: string]: unknown;
}

/** One packed package: its tarball, the tarball's unpacked files and its packed manifest. */
export interface PackedPackage {
  name: string;
  tarball: string;
  /** Size of the `.tgz` in bytes. */
  size: number;
  /** Total size of the unpacked files in bytes. */
  unpackedSize: number;
  /** Paths inside the package, e.g. `dist/index.js`. */
  files: string[];
  /** The `package.json` inside the tarball (after pnpm applied `publishConfig`). */
  manifest: Manifest;
  /** Where the tarball was unpacked (the package root, not the `package/` parent). */
  unpacked: string;
}

/** Runs a command; resolves with its stdout, rejects with its output when it fails. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd ?? ROOT,
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: options.env ?? process.env,
      },
      (error, stdout, stderr) => {
        if (error) {
          const what = `${command} ${args.join(' ')}`;
          const reason = error.killed ? `timed out after ${options.timeoutMs} ms` : error.message;
          reject(new Error(`${what} failed (${reason})\n${stdout}\n${stderr}`));
        } else resolve(stdout);
      },
    );
  });
}

/** The publishable workspace packages (`packages/*`, not private), by directory. */
export function publishablePackages(): { dir: string; manifest: Manifest }[] {
  const base = join(ROOT, 'packages');
  return readdirSync(base)
    .map((name) => join(base, name))
    .filter((dir) => statSync(join(dir, 'package.json'), { throwIfNoEntry: false })?.isFile())
    .map((dir) => ({
      dir,
      manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest,
    }))
    .filter(({ manifest }) => manifest.private !== true);
}

/** `pnpm build`: the packages' `dist`, incremental (fast when nothing changed). */
export async function buildPackages(timeoutMs: number): Promise<void> {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  await run(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { timeoutMs });
}

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path, base) : [relative(base, path)];
  });
}

/**
 * Packs every publishable package with `pnpm pack` (which replaces `workspace:` ranges and
 * applies `publishConfig`, as `pnpm publish` does) into `destination`, and unpacks each.
 */
export async function packPackages(
  destination: string,
  timeoutMs: number,
): Promise<PackedPackage[]> {
  const packed: PackedPackage[] = [];
  for (const { dir, manifest } of publishablePackages()) {
    const out = join(destination, 'tarballs');
    await mkdir(out, { recursive: true });
    await run('pnpm', ['pack', '--pack-destination', out], { cwd: dir, timeoutMs });
    const tarball = join(
      out,
      `${manifest.name.replace('@', '').replace('/', '-')}-${manifest.version}.tgz`,
    );
    const unpackTo = join(destination, 'unpacked', manifest.name.replace('/', '+'));
    await mkdir(unpackTo, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', unpackTo], { timeoutMs });
    const root = join(unpackTo, 'package');
    const files = listFiles(root).sort();
    packed.push({
      name: manifest.name,
      tarball,
      size: statSync(tarball).size,
      unpackedSize: files.reduce((sum, file) => sum + statSync(join(root, file)).size, 0),
      files,
      manifest: JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest,
      unpacked: root,
    });
  }
  return packed;
}

const DEPENDENCY_FIELDS = [
  'dependencies',
  'peerDependencies',
  'optionalDependencies',
  'devDependencies',
] as const;

/** Every `exports` target with the conditions that lead to it, e.g. `['.', 'types']`. */
function exportTargets(value: unknown, path: string[] = []): { path: string[]; target: string }[] {
  if (typeof value === 'string') return [{ path, target: value }];
  if (Array.isArray(value)) return value.flatMap((item) => exportTargets(item, path));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => exportTargets(item, [...path, key]));
  }
  return [];
}

/** Condition objects of `exports` whose `types` condition is missing or not first. */
function typesNotFirst(value: unknown, path: string[] = []): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const keys = Object.keys(value);
  const isConditions = keys.length > 0 && !keys[0]!.startsWith('.');
  const here =
    isConditions && keys[0] !== 'types'
      ? [`exports${path.map((p) => `[${JSON.stringify(p)}]`).join('')}: "types" must come first`]
      : [];
  return [
    ...here,
    ...Object.entries(value).flatMap(([key, item]) => typesNotFirst(item, [...path, key])),
  ];
}

/**
 * What would make a packed package unpublishable or unpleasant to consume: `workspace:` ranges,
 * `.ts` sources or tests in the tarball, `exports` that point outside `dist`, at `.ts` sources
 * or at missing files, and conditions without `types` first. Empty when the package is fine.
 */
export function packageProblems(pkg: PackedPackage): string[] {
  const problems: string[] = [];
  const { manifest, files } = pkg;
  for (const field of DEPENDENCY_FIELDS) {
    for (const [name, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}.${name} is "${range}"`);
    }
  }
  if (manifest.exports === undefined) problems.push('no "exports"');
  const shipped = new Set(files);
  for (const { path, target } of exportTargets(manifest.exports)) {
    const where = `exports ${path.join(' > ')} → ${target}`;
    if (!target.startsWith('./dist/')) problems.push(`${where}: not in ./dist`);
    if (/\.[cm]?ts$/.test(target) && !/\.d\.[cm]?ts$/.test(target)) {
      problems.push(`${where}: a TypeScript source`);
    }
    if (!shipped.has(target.slice(2))) problems.push(`${where}: not in the tarball`);
  }
  problems.push(...typesNotFirst(manifest.exports));
  for (const field of ['main', 'module', 'types', 'typings'] as const) {
    const target = manifest[field];
    if (typeof target === 'string' && !shipped.has(target.replace(/^\.\//, ''))) {
      problems.push(`${field} → ${target}: not in the tarball`);
    }
  }
  for (const file of files) {
    if (/\.[cm]?ts$/.test(file) && !/\.d\.[cm]?ts$/.test(file)) {
      problems.push(`${file}: TypeScript source shipped`);
    }
    if (/\.test\.|\.tsbuildinfo$/.test(file)) problems.push(`${file}: not meant to ship`);
  }
  for (const required of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
    if (!shipped.has(required)) problems.push(`${required} missing`);
  }
  if (!files.some((file) => file.endsWith('.d.ts'))) problems.push('no type declarations');
  // Bare imports in the shipped declarations must be installed for the consumer's compiler.
  const declared = new Set(
    ['dependencies', 'peerDependencies'].flatMap((field) => Object.keys(manifest[field] ?? {})),
  );
  for (const file of files.filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(join(pkg.unpacked, file), 'utf8');
    for (const match of text.matchAll(/^(?:import|export)[^'"\n]*from\s+['"]([^'"]+)['"]/gm)) {
      const specifier = match[1]!;
      if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
      if (name !== manifest.name && !declared.has(name)) {
        problems.push(`${file} imports '${specifier}', which is no dependency or peer`);
      }
    }
  }
  return problems;
}

/** publint's errors and warnings (strict) for a tarball, formatted. */
export async function publintProblems(pkg: PackedPackage): Promise<string[]> {
  const { publint } = await import('publint');
  const { formatMessage } = await import('publint/utils');
  const data = await readFile(pkg.tarball);
  const tarball = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  const result = await publint({ pack: { tarball }, strict: true, level: 'warning' });
  return result.messages.map(
    (message) => `${message.type}: ${formatMessage(message, result.pkg, { color: false })}`,
  );
}

/**
 * `attw` (Are the Types Wrong?) on a tarball with the `esm-only` profile: the packages are
 * ESM-only and CommonJS callers use `require(esm)` (Node ≥ 20.19), so only the CommonJS
 * resolution modes are left out. Resolves with its report when it finds a problem.
 */
export async function attwProblems(pkg: PackedPackage, timeoutMs: number): Promise<string[]> {
  const attw = join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js');
  try {
    await run(
      process.execPath,
      [attw, pkg.tarball, '--profile', 'esm-only', '--no-color', '--no-emoji', '--format', 'ascii'],
      { timeoutMs, env: { ...process.env, FORCE_COLOR: '0' } },
    );
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

/** Every problem of every packed package, prefixed with the package's name. */
export async function releaseProblems(
  packed: PackedPackage[],
  timeoutMs: number,
): Promise<string[]> {
  const problems: string[] = [];
  for (const pkg of packed) {
    const found = [
      ...packageProblems(pkg),
      ...(await publintProblems(pkg)),
      ...(await attwProblems(pkg, timeoutMs)),
    ];
    problems.push(...found.map((problem) => `${pkg.name}: ${problem}`));
  }
  return problems;
}
