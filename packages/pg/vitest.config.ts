import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'pg',
    include: ['src/**/*.test.ts'],
  },
});
