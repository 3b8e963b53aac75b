// @ts-check
import js from '@eslint/js'
import importX from 'eslint-plugin-import-x'
import tseslint from 'typescript-eslint'

/** Import boundaries of the architecture (docs/architecture.md): dependencies point one way. */
const restrict = (patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
})

const noTestkit = {
  group: ['@tiercache/testkit', '@tiercache/testkit/*'],
  message: 'runtime code never imports the testkit',
}
const noRedisClients = {
  group: ['ioredis', 'ioredis/*', 'msgpackr', 'msgpackr/*', 'lz4-napi', 'lz4-napi/*'],
  message: '@tiercache/core stays free of Redis clients and codecs: they belong in @tiercache/redis',
}

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', 'benchmarks/results/**', 'test/fixtures/lint/**', '.turbo/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', performance: 'readonly', fetch: 'readonly' },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['packages/*/src/**/*.ts'],
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['packages/core/src/**/*.ts'],
    rules: restrict([noRedisClients, noTestkit, { group: ['@tiercache/*'], message: '@tiercache/core depends on no other tiercache package' }]),
  },
  {
    files: ['packages/core/test/**/*.ts'],
    rules: restrict([noRedisClients, { ...noTestkit, message: 'core tests must not import the testkit (dependency cycle): contract suites run from test/' }]),
  },
  {
    files: ['packages/redis/src/**/*.ts'],
    rules: restrict([noTestkit, { group: ['@tiercache/task', '@tiercache/task/*'], message: '@tiercache/redis depends on core only' }]),
  },
  {
    files: ['packages/prometheus/src/**/*.ts', 'packages/opentelemetry/src/**/*.ts'],
    rules: restrict([
      noRedisClients,
      noTestkit,
      { group: ['@tiercache/redis', '@tiercache/task', '@tiercache/task/*'], message: 'an exporter depends on @tiercache/core only: it reads stats() and the tiercache:* channels' },
    ]),
  },
  {
    files: ['packages/task/src/**/*.ts'],
    rules: restrict([
      noTestkit,
      { group: ['ioredis', 'ioredis/*'], message: '@tiercache/task never sees ioredis: it talks to the cache through @tiercache/core' },
      { group: ['@tiercache/redis'], message: '@tiercache/task depends on @tiercache/core only' },
    ]),
  },
)
