import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'integration',
    include: [
      'harness/**/*.test.ts',
      'integration/**/*.test.ts',
      'conformance/**/*.test.ts',
      'e2e/**/*.test.ts',
      'faults/**/*.test.ts',
    ],
    globalSetup: ['./global-setup.ts'],
    // Real servers: starting, stopping and replaying take seconds on a small machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
