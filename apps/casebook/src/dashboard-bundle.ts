import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

const PUBLIC = new URL('../public/', import.meta.url);

/** The dashboard's static files, with its script bundled once at start-up (no build step for users). */
export async function dashboardAssets(): Promise<Record<string, { type: string; body: string }>> {
  const bundle = await build({
    entryPoints: [new URL('dashboard.ts', PUBLIC).pathname],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    minify: false,
  });
  return {
    '/': {
      type: 'text/html; charset=utf-8',
      body: await readFile(new URL('index.html', PUBLIC), 'utf8'),
    },
    '/dashboard.css': {
      type: 'text/css; charset=utf-8',
      body: await readFile(new URL('dashboard.css', PUBLIC), 'utf8'),
    },
    '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: bundle.outputFiles[0]!.text },
  };
}
