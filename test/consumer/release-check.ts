// `pnpm release:check`: packs every publishable package as `pnpm publish` would (nothing is
// published) and fails when a tarball is unpublishable: `workspace:` ranges, `.ts` sources,
// exports or types pointing at missing files, publint or attw findings.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPackages, releaseProblems } from './packing.js';

const TIMEOUT_MS = 120_000;
const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;

const scratch = await mkdtemp(join(tmpdir(), 'freshgate-release-'));
try {
  const packed = await packPackages(scratch, TIMEOUT_MS);
  for (const pkg of packed) {
    console.log(
      `${pkg.name}@${pkg.manifest.version}: ${pkg.files.length} files, ${kB(pkg.size)} packed, ${kB(pkg.unpackedSize)} unpacked`,
    );
  }
  const problems = await releaseProblems(packed, TIMEOUT_MS);
  if (problems.length > 0) {
    console.error(`\n${problems.length} problem(s):\n${problems.join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('\nevery package is publishable (publint and attw report nothing)');
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
