import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

// The import boundaries of docs/architecture.md are lint rules; these tests prove the rules bite.
const root = fileURLToPath(new URL('..', import.meta.url))
const eslint = new ESLint({ cwd: root })

async function restrictedImports(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

// Loading the lint configuration and type-aware plugins takes seconds on a busy machine.
describe('import boundaries', { timeout: 60_000 }, () => {
  it.each([
    ["import { Redis } from 'ioredis'\nexport const r = Redis\n", 'ioredis'],
    ["import { pack } from 'msgpackr'\nexport const p = pack\n", 'msgpackr'],
    ["import { compressSync } from 'lz4-napi'\nexport const c = compressSync\n", 'lz4-napi'],
  ])('core may not import a Redis client or codec (%#)', async (code) => {
    const messages = await restrictedImports(code, 'packages/core/src/bad.ts')
    expect(messages.join('\n')).toMatch(/@tiercache\/core stays free of Redis clients/)
  })

  it('the task adapter may not import ioredis', async () => {
    const messages = await restrictedImports("import { Redis } from 'ioredis'\nexport const r = Redis\n", 'packages/task/src/bad.ts')
    expect(messages.join('\n')).toMatch(/never sees ioredis/)
  })

  it('runtime code may not import the testkit', async () => {
    for (const pkg of ['core', 'redis', 'task']) {
      const messages = await restrictedImports(
        "import { startRedis } from '@tiercache/testkit'\nexport const s = startRedis\n",
        `packages/${pkg}/src/bad.ts`,
      )
      expect(messages.join('\n'), pkg).toMatch(/testkit/)
    }
  })

  it('the redis package may import ioredis, and tests may import the testkit', async () => {
    expect(await restrictedImports("import { Redis } from 'ioredis'\nexport const r = Redis\n", 'packages/redis/src/ok.ts')).toEqual([])
    expect(await restrictedImports("import { startRedis } from '@tiercache/testkit'\nexport const s = startRedis\n", 'test/ok.test.ts')).toEqual([])
  })
})
