// freshgate as a user gets it: the packages are packed as they would be published, checked
// with publint and attw, installed with npm into an app outside the workspace with the real
// peer dependencies, imported from plain Node.js (ESM and CommonJS), type-checked as a
// TypeScript consumer, and the README's Express and Fastify examples run from the installed
// packages against a primary and a lagging replica.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, freePort, startCluster, waitFor } from '../harness/index.js';
import {
  attwProblems,
  buildPackages,
  type Manifest,
  type PackedPackage,
  packageProblems,
  packPackages,
  publintProblems,
  ROOT,
  run,
} from './packing.js';

// Generous bounds: a cold npm cache on a small, busy CI machine.
const BUILD_TIMEOUT_MS = 240_000;
const PACK_TIMEOUT_MS = 120_000;
const INSTALL_TIMEOUT_MS = 420_000;
const TSC_TIMEOUT_MS = 180_000;
const NODE_TIMEOUT_MS = 60_000;

const APP_DIR = new URL('./app/', import.meta.url);
const SECRET = 'consumer-test secret, 32 bytes or more';

let scratch: string;
let app: string;
let packed: PackedPackage[];

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** The fenced block after each `<!-- consumer-test: <file> -->` marker of the README. */
async function readmeExamples(): Promise<Map<string, string>> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const match of readme.matchAll(/<!-- consumer-test: ([\w.-]+) -->\n```ts\n([\s\S]*?)```/g)) {
    blocks.set(match[1]!, match[2]!);
  }
  return blocks;
}

/** Entry points of a packed package as specifiers: `@freshgate/core`, `@freshgate/core/testing`. */
function entryPoints(manifest: Manifest): string[] {
  const exports = manifest.exports as Record<string, unknown>;
  return Object.keys(exports).map((key) =>
    key === '.' ? manifest.name : `${manifest.name}${key.slice(1)}`,
  );
}

beforeAll(
  async () => {
    scratch = await mkdtemp(join(tmpdir(), 'freshgate-consumer-'));
    app = join(scratch, 'app');
    await buildPackages(BUILD_TIMEOUT_MS);
    packed = await packPackages(scratch, PACK_TIMEOUT_MS);

    // The scratch app: the tarballs and the peers a user installs, at the workspace's ranges.
    const workspace = await readJson<Manifest>(join(ROOT, 'test/package.json'));
    const root = await readJson<Manifest>(join(ROOT, 'package.json'));
    const range = (name: string) =>
      workspace.devDependencies?.[name] ?? root.devDependencies?.[name] ?? 'latest';
    const peers = [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/platform-express',
      '@opentelemetry/api',
      'express',
      'fastify',
      'ioredis',
      'pg',
      'reflect-metadata',
      'rxjs',
    ];
    const types = ['@types/express', '@types/node', 'typescript'];
    const tarballs = Object.fromEntries(packed.map((pkg) => [pkg.name, `file:${pkg.tarball}`]));
    await mkdir(join(app, 'src'), { recursive: true });
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'freshgate-consumer',
          private: true,
          type: 'module',
          dependencies: {
            ...tarballs,
            ...Object.fromEntries(peers.map((name) => [name, range(name)])),
          },
          devDependencies: Object.fromEntries(types.map((name) => [name, range(name)])),
          // The packages depend on each other by version: take them from the tarballs, never
          // from the registry.
          overrides: Object.fromEntries(packed.map((pkg) => [pkg.name, `$${pkg.name}`])),
        },
        null,
        2,
      ),
    );
    for (const file of [
      'imports.mjs',
      'require.cjs',
      'tsconfig.nodenext.json',
      'tsconfig.nodenext-dom.json',
      'tsconfig.bundler.json',
      'tsconfig.emit.json',
    ]) {
      await copyFile(new URL(file, APP_DIR), join(app, file));
    }
    await copyFile(new URL('types-check.ts', APP_DIR), join(app, 'src/types-check.ts'));
    for (const [file, code] of await readmeExamples()) {
      await writeFile(join(app, 'src', file), code);
    }
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
      { cwd: app, timeoutMs: INSTALL_TIMEOUT_MS },
    );
  },
  BUILD_TIMEOUT_MS + PACK_TIMEOUT_MS * 2 + INSTALL_TIMEOUT_MS,
);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('ship only built files, with exports into dist (types first) and no workspace ranges', () => {
    expect(packed.map((pkg) => pkg.name).sort()).toEqual([
      '@freshgate/client',
      '@freshgate/core',
      '@freshgate/express',
      '@freshgate/fastify',
      '@freshgate/nestjs',
      '@freshgate/pg',
      '@freshgate/redis',
    ]);
    for (const pkg of packed) expect(packageProblems(pkg), pkg.name).toEqual([]);
  });

  it('pass publint (strict) with no message', async () => {
    for (const pkg of packed) expect(await publintProblems(pkg), pkg.name).toEqual([]);
  });

  it('pass attw (are the types wrong) for ESM-only packages', async () => {
    for (const pkg of packed) {
      expect(await attwProblems(pkg, PACK_TIMEOUT_MS), pkg.name).toEqual([]);
    }
  });
});

describe('a consumer app that installed the tarballs with npm', () => {
  it('has the README examples to run', async () => {
    expect([...(await readmeExamples()).keys()].sort()).toEqual([
      'express-app.ts',
      'fastify-app.ts',
      'nest-app.ts',
    ]);
  });

  // An entry point may need an optional peer the app did not install (vitest for
  // @freshgate/core/testing); then the import fails naming exactly that peer.
  function expectEveryEntryPoint(result: Record<string, { exports?: string[]; missing?: string }>) {
    for (const pkg of packed) {
      const optional = Object.entries(pkg.manifest.peerDependenciesMeta ?? {})
        .filter(([, meta]) => meta.optional)
        .map(([name]) => name);
      for (const specifier of entryPoints(pkg.manifest)) {
        const entry = result[specifier];
        if (entry?.missing !== undefined) expect(optional, specifier).toContain(entry.missing);
        else expect(entry?.exports?.length, specifier).toBeGreaterThan(0);
      }
    }
    expect(result['@freshgate/express']?.exports).toContain('freshgate');
    expect(result['@freshgate/fastify']?.exports).toContain('freshgate');
    expect(result['@freshgate/pg']?.exports).toContain('createFreshgate');
    expect(result['@freshgate/nestjs']?.exports).toContain('FreshgateModule');
  }

  it('imports every entry point from plain Node.js (ESM)', async () => {
    const specifiers = packed.flatMap((pkg) => entryPoints(pkg.manifest));
    const out = await run(process.execPath, ['imports.mjs', ...specifiers], {
      cwd: app,
      timeoutMs: NODE_TIMEOUT_MS,
    });
    expectEveryEntryPoint(JSON.parse(out));
  });

  it('requires every entry point from CommonJS (require of ESM, Node.js >= 20.19)', async () => {
    const specifiers = packed.flatMap((pkg) => entryPoints(pkg.manifest));
    const out = await run(process.execPath, ['require.cjs', ...specifiers], {
      cwd: app,
      timeoutMs: NODE_TIMEOUT_MS,
    });
    expectEveryEntryPoint(JSON.parse(out));
  });

  it('does not need @types/pg to type-check', async () => {
    await expect(readFile(join(app, 'node_modules/@types/pg/package.json'))).rejects.toThrow();
  });

  // skipLibCheck is off: the consumer's compiler checks freshgate's declarations too, under
  // DOM and non-DOM libs (the client and the pg package in one program).
  for (const config of ['nodenext', 'nodenext-dom', 'bundler']) {
    it(`type-checks (moduleResolution ${config}): req.db, request.db, config.freshness typed`, async () => {
      const tsc = join(app, 'node_modules/typescript/bin/tsc');
      await run(process.execPath, [tsc, '-p', `tsconfig.${config}.json`], {
        cwd: app,
        timeoutMs: TSC_TIMEOUT_MS,
      });
    });
  }
});

describe('the README examples, run from the installed packages', () => {
  let cluster: Cluster;
  const servers: ChildProcess[] = [];

  beforeAll(async () => {
    const tsc = join(app, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.emit.json'], {
      cwd: app,
      timeoutMs: TSC_TIMEOUT_MS,
    });
    cluster = await startCluster({ replicas: 1, redis: true });
    await cluster.write('CREATE TABLE cases (id serial PRIMARY KEY, title text NOT NULL)');
    await cluster.waitForReplicas();
  }, TSC_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    for (const server of servers) server.kill('SIGKILL');
    await cluster?.stop();
  });

  async function startApp(file: string): Promise<string> {
    const port = await freePort();
    const output: string[] = [];
    const server = spawn(process.execPath, [join('out', file)], {
      cwd: app,
      env: {
        ...process.env,
        PORT: String(port),
        DATABASE_PRIMARY_URL: cluster.primary.url,
        DATABASE_REPLICA_URL: cluster.replica('r1').url,
        REDIS_URL: cluster.redisUrl,
        FRESHGATE_SECRET: SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.push(server);
    server.stdout?.on('data', (chunk) => output.push(String(chunk)));
    server.stderr?.on('data', (chunk) => output.push(String(chunk)));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      `${file} to listen on ${base}`,
      async () => {
        if (server.exitCode !== null) {
          throw new Error(`${file} exited with ${server.exitCode}: ${output.join('')}`);
        }
        return (await fetch(`${base}/cases/0`)).status;
      },
      { timeoutMs: NODE_TIMEOUT_MS, intervalMs: 100 },
    );
    return base;
  }

  // The replica replays every commit this long after the primary; the examples' read contract
  // waits up to 3 s for a replica that has replayed the client's writes.
  const LAG_MS = 400;

  async function createCase(base: string, title: string, headers: Record<string, string> = {}) {
    const created = await fetch(`${base}/cases`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ title }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-freshness-route')).toBe('primary');
    const { id } = (await created.json()) as { id: number };
    return { id, token: created.headers.get('x-freshness-token') };
  }

  for (const [framework, file] of [
    ['Express', 'express-app.js'],
    ['Fastify', 'fastify-app.js'],
    ['NestJS', 'nest-app.js'],
  ] as const) {
    describe(framework, () => {
      let base: string;

      beforeAll(async () => {
        base = await startApp(file);
        await cluster.replica('r1').setApplyDelay(LAG_MS);
      }, NODE_TIMEOUT_MS * 2);

      afterAll(async () => {
        await cluster.replica('r1').setApplyDelay(0);
      });

      it("a write's token sends the next read to the caught-up replica, which sees the write", async () => {
        const title = `${framework} case`;
        const { id, token } = await createCase(base, title);
        expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

        const read = await fetch(`${base}/cases/${id}`, {
          headers: { 'x-freshness-token': token! },
        });
        expect(read.headers.get('x-freshness-route')).toBe('replica:r1');
        expect(read.status).toBe(200);
        expect(await read.json()).toEqual({ id, title });
      });

      it("a token-less client's session pin does the same", async () => {
        const session = { 'x-session-id': `${framework}-session` };
        const title = `${framework} pinned case`;
        const { id } = await createCase(base, title, session);

        const read = await fetch(`${base}/cases/${id}`, { headers: session });
        expect(read.headers.get('x-freshness-route')).toBe('replica:r1');
        expect(read.status).toBe(200);
        expect(await read.json()).toEqual({ id, title });
      });
    });
  }
});
