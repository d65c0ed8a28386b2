import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Kernel tests share loop devices and mount points; files run one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
