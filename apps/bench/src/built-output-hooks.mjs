// Module resolution hooks of built-output.mjs.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PACKAGES = new URL('../../../packages/', import.meta.url);
const FRESHGATE = /^@freshgate\/([a-z-]+)(?:\/(.+))?$/;

export async function resolve(specifier, context, next) {
  const match = FRESHGATE.exec(specifier);
  if (!match) return next(specifier, context);
  const url = new URL(`${match[1]}/dist/${match[2] ?? 'index'}.js`, PACKAGES);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`${specifier}: ${fileURLToPath(url)} is missing; run \`pnpm build\` first`);
  }
  return { url: url.href, shortCircuit: true };
}
