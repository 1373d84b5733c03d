import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The text of `path` (from the repository root), or of its `// #region name`, dedented. */
function source(reference: string): string {
  const [path, region] = reference.split('#') as [string, string | undefined];
  const text = readFileSync(join(ROOT, path), 'utf8');
  if (!region) return text.trimEnd();
  const start = text.indexOf(`// #region ${region}\n`);
  const end = text.indexOf(`// #endregion ${region}`);
  if (start === -1 || end === -1) throw new Error(`no region ${region} in ${path}`);
  const lines = text
    .slice(text.indexOf('\n', start) + 1, end)
    .trimEnd()
    .split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length),
  );
  return lines.map((l) => l.slice(indent)).join('\n');
}

describe('docs/orm.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/orm.md'), 'utf8');
  const blocks = [...doc.matchAll(/^```(ts|js)([^\n]*)\n([\s\S]*?)^```$/gm)];

  it('has code for every recipe the tests run', () => {
    const files = blocks.map((b) => /file=(\S+)/.exec(b[2] ?? '')?.[1]);
    for (const recipe of ['drizzle', 'kysely', 'typeorm'])
      expect(files).toContain(`test/integration/orm/recipes/${recipe}.ts`);
  });

  // Every snippet is the code the recipe tests run, character for character.
  for (const [index, block] of blocks.entries()) {
    const file = /file=(\S+)/.exec(block[2] ?? '')?.[1];
    it(`snippet ${index + 1} (${file ?? 'no file= given'}) is the tested code`, () => {
      expect(file, 'every code block names the tested file it shows').toBeDefined();
      expect((block[3] ?? '').trimEnd()).toBe(source(file as string));
    });
  }
});
