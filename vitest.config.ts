import { defineConfig } from 'vitest/config';

// One configuration for the whole workspace: each package (and the cross-package `test/`
// folder) is a project with its own settings.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test', 'test/consumer'],
  },
});
