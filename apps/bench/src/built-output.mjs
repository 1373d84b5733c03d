// `node --import ./built-output.mjs`: every `@freshgate/*` import resolves to the package's
// build output (`packages/<name>/dist`), as in an installed tarball, instead of the TypeScript
// sources the workspace's `exports` point at. Section 1 measures what users run.
import { register } from 'node:module';

register('./built-output-hooks.mjs', import.meta.url);
