// The release check itself: each kind of unpublishable tarball is reported.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Manifest, type PackedPackage, packageProblems } from './packing.js';

const GOOD_EXPORTS = {
  '.': { types: './dist/index.d.ts', default: './dist/index.js' },
};
const GOOD_FILES: Record<string, string> = {
  'package.json': '{}',
  'README.md': '',
  LICENSE: '',
  'CHANGELOG.md': '',
  'dist/index.js': 'export {};',
  'dist/index.d.ts': "import type { Tracer } from '@opentelemetry/api';\nexport {};",
};

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function tarball(
  manifest: Partial<Manifest>,
  files: Record<string, string> = GOOD_FILES,
): Promise<PackedPackage> {
  dir = await mkdtemp(join(tmpdir(), 'freshgate-packing-'));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), text);
  }
  return {
    name: '@freshgate/example',
    tarball: join(dir, 'example.tgz'),
    size: 0,
    unpackedSize: 0,
    files: Object.keys(files).sort(),
    manifest: {
      name: '@freshgate/example',
      version: '1.0.0',
      exports: GOOD_EXPORTS,
      peerDependencies: { '@opentelemetry/api': '^1.9.0' },
      ...manifest,
    },
    unpacked: dir,
  };
}

describe('packageProblems', () => {
  it('finds nothing in a publishable package', async () => {
    expect(packageProblems(await tarball({}))).toEqual([]);
  });

  it('reports workspace ranges left in the manifest', async () => {
    const pkg = await tarball({ dependencies: { '@freshgate/core': 'workspace:^' } });
    expect(packageProblems(pkg)).toEqual(['dependencies.@freshgate/core is "workspace:^"']);
  });

  it('reports exports into TypeScript sources, outside dist, or at missing files', async () => {
    const pkg = await tarball({
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './adapter': { types: './dist/adapter.d.ts', default: './dist/adapter.js' },
        './source': './src/index.ts',
      },
    });
    expect(packageProblems(pkg)).toEqual([
      'exports ./adapter > types → ./dist/adapter.d.ts: not in the tarball',
      'exports ./adapter > default → ./dist/adapter.js: not in the tarball',
      'exports ./source → ./src/index.ts: not in ./dist',
      'exports ./source → ./src/index.ts: a TypeScript source',
      'exports ./source → ./src/index.ts: not in the tarball',
    ]);
  });

  it('reports conditions without types first', async () => {
    const pkg = await tarball({
      exports: { '.': { default: './dist/index.js', types: './dist/index.d.ts' } },
    });
    expect(packageProblems(pkg)).toEqual(['exports["."]: "types" must come first']);
  });

  it('reports shipped sources, tests, build info and missing LICENSE or CHANGELOG', async () => {
    const { LICENSE: _license, 'CHANGELOG.md': _changelog, ...rest } = GOOD_FILES;
    const pkg = await tarball(
      {},
      { ...rest, 'src/index.ts': '', 'dist/index.test.js': '', 'dist/.tsbuildinfo': '' },
    );
    expect(packageProblems(pkg)).toEqual([
      'dist/.tsbuildinfo: not meant to ship',
      'dist/index.test.js: not meant to ship',
      'src/index.ts: TypeScript source shipped',
      'LICENSE missing',
      'CHANGELOG.md missing',
    ]);
  });

  it('reports declarations that import a package the consumer is not told to install', async () => {
    const pkg = await tarball(
      {},
      { ...GOOD_FILES, 'dist/pool.d.ts': "import type pg from 'pg';\nexport type P = pg.Pool;" },
    );
    expect(packageProblems(pkg)).toEqual([
      "dist/pool.d.ts imports 'pg', which is no dependency or peer",
    ]);
  });
});
