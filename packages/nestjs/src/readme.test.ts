import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const block = (path: string, marker: string) => {
  const text = readFileSync(new URL(path, import.meta.url), 'utf8');
  const match = new RegExp(`${marker}\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(text);
  return match?.[1];
};

describe('README', () => {
  it('shows the example the consumer test runs from the packed packages, as it is', () => {
    const tested = block('../../../README.md', '<!-- consumer-test: nest-app.ts -->');
    expect(tested).toBeDefined();
    expect(block('../README.md', '<!-- same-as: ../../README.md nest-app.ts -->')).toBe(tested);
  });
});
