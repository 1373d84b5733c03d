import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'consumer',
    include: ['*.test.ts'],
    // Packing, an npm install and several compilers: minutes on a small, busy machine (each
    // step has its own bound in the test).
    testTimeout: 240_000,
    hookTimeout: 900_000,
    pool: 'forks',
  },
});
