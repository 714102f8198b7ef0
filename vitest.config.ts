import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Suites share 2 cores with the native thread pool: run files one at a time so timings and
    // thread budgets stay sane.
    fileParallelism: false,
    pool: 'forks',
    // The CPU backend fills every new buffer with NaN (native/cpu/cpu_backend.cpp), so reading
    // memory a kernel never wrote fails the tests instead of passing on fresh zero pages.
    env: { TROUPE_POISON_ALLOCATIONS: '1' },
  },
});
