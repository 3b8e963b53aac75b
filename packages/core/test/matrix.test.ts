import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type TieredCacheOptions, memoryBus, memoryStore } from '../src/index.js'
import { cacheFor } from './helpers.js'

// The same behaviour over every strategy the engine chooses at construction.
const configs: [string, () => TieredCacheOptions][] = [
  ['L1 only, freeze', () => ({})],
  ['L1 only, clone', () => ({ l1: { immutability: 'clone' } })],
  ['L1 only, none', () => ({ l1: { immutability: 'none' } })],
  ['L1 + L2', () => ({ l2: memoryStore() })],
  ['L1 + L2 + bus', () => ({ l2: memoryStore(), bus: memoryBus() })],
  ['L1 + L2 + bus, stats sink', () => ({ l2: memoryStore(), bus: memoryBus(), stats: { increment() {}, timing() {} } })],
  ['L1 + L2, bytes bound', () => ({ l2: memoryStore(), l1: { maxBytes: 1_000_000 } })],
]

describe.each(configs)('%s', (_name, options) => {
  it('reads through, hits, overwrites and deletes', async () => {
    const cache = cacheFor(options())
    let calls = 0
    expect(await cache.getOrSet('k', () => (calls++, { n: 1 }))).toEqual({ n: 1 })
    expect(await cache.getOrSet('k', () => (calls++, { n: 2 }))).toEqual({ n: 1 })
    expect(await cache.get('k')).toEqual({ n: 1 })
    expect(cache.peek('k')).toEqual({ n: 1 })
    expect(calls).toBe(1)
    await cache.set('k', { n: 3 })
    expect(await cache.get('k')).toEqual({ n: 3 })
    await cache.delete('k')
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
    await cache.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ])
    expect(await cache.getMany(['b', 'x', 'a'])).toEqual([2, undefined, 1])
    await cache.clear()
    expect(await cache.getMany(['a', 'b'])).toEqual([undefined, undefined])
    const stats = cache.stats()
    expect(stats.total.loaderCalls).toBe(1)
    expect(stats.total.l1Hits).toBeGreaterThanOrEqual(3)
  })

  it('single-flights concurrent misses', async () => {
    const cache = cacheFor(options())
    let calls = 0
    const values = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', async () => (calls++, 'v'))))
    expect(values).toEqual(Array(20).fill('v'))
    expect(calls).toBe(1)
  })
})

describe('process lifetime', () => {
  it('a cache with L2 and bus that is never closed does not keep the process alive', async () => {
    const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url))
    const script = `
      const { createTieredCache, memoryStore, memoryBus } = await import(${JSON.stringify(entry)})
      const cache = createTieredCache({ l2: memoryStore(), bus: memoryBus(), l2Timeout: '1s' })
      await cache.getOrSet('k', () => 1)
      await cache.set('j', 2)
      console.log('done')
    `
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      )
    })
    expect(output.trim()).toBe('done')
  }, 60_000)
})
