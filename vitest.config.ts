import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url))

// Tests run against the TypeScript sources, so `pnpm test` needs no build first.
const alias = [
  { find: /^@tiercache\/core$/, replacement: src('core/src/index.ts') },
  { find: /^@tiercache\/redis$/, replacement: src('redis/src/index.ts') },
  { find: /^@tiercache\/opentelemetry$/, replacement: src('opentelemetry/src/index.ts') },
  { find: /^@tiercache\/prometheus$/, replacement: src('prometheus/src/index.ts') },
  { find: /^@tiercache\/task$/, replacement: src('task/src/index.ts') },
  { find: /^@tiercache\/task\/sqlite$/, replacement: src('task/src/sqlite/index.ts') },
  { find: /^@tiercache\/task\/postgres$/, replacement: src('task/src/postgres/index.ts') },
  { find: /^@tiercache\/testkit$/, replacement: src('testkit/src/index.ts') },
  { find: /^@tiercache\/testkit\/vitest$/, replacement: src('testkit/src/vitest.ts') },
]

const shared = { resolve: { alias } }

export default defineConfig({
  test: {
    // In CI a JSON report lets .ci/run print one plain 'N passed, N failed' closing line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.tmp/test-results.json' },
    projects: [
      {
        ...shared,
        test: {
          name: 'unit',
          // Unit tests first, then integration tests, each group with its own worker count.
          sequence: { groupOrder: 0 },
          include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'benchmarks/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
          // The benchmark harness's tests start child processes: give them time on a busy machine.
          testTimeout: 60_000,
          exclude: ['**/*.int.test.ts', '**/node_modules/**', '**/dist/**'],
        },
      },
      {
        ...shared,
        test: {
          name: 'int',
          sequence: { groupOrder: 1 },
          include: ['packages/*/test/**/*.int.test.ts', 'test/**/*.int.test.ts', 'examples/*/test/**/*.int.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          globalSetup: [src('testkit/src/vitest.ts')],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Integration files start their own Redis processes; two at a time suits a 2-core machine.
          maxWorkers: 2,
        },
      },
    ],
  },
})
