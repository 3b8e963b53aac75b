import { defineConfig } from 'vitest/config'

// The harness's own tests (no network): `pnpm --filter @tiercache/benchmarks test`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
})
