import { defineProject } from 'vitest/config';

// casebook is tested end to end from test/e2e (against the real harness, both frameworks).
export default defineProject({
  test: {
    name: 'casebook',
    include: ['src/**/*.test.ts'],
    passWithNoTests: true,
  },
});
