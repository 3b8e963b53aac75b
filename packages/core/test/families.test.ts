import { describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { InvalidOptionsError, memoryStore } from '../src/index.js'
import { cacheFor, fakeClock } from './helpers.js'

interface Task {
  id: string
  status: string
}

describe('families', () => {
  it('are typed handles over params', async () => {
    const cache = cacheFor()
    const status = cache.family<{ id: string }, Task>({ name: 'task:status', key: (p) => p.id })
    const task = await status.getOrSet({ id: '1' }, () => ({ id: '1', status: 'running' }))
    expectTypeOf(task).toEqualTypeOf<Task>()
    expect(status.peek({ id: '1' })).toEqual({ id: '1', status: 'running' })
    expect(await status.get({ id: '2' })).toBeUndefined()
    await status.setMany([
      { params: { id: '2' }, value: { id: '2', status: 'done' } },
      { params: { id: '3' }, value: { id: '3', status: 'new' } },
    ])
    expect((await status.getMany([{ id: '3' }, { id: '9' }, { id: '2' }])).map((t) => t?.status)).toEqual(['new', undefined, 'done'])
    await status.delete([{ id: '2' }, { id: '3' }])
    expect(status.peek({ id: '2' })).toBeUndefined()
    expect(status.id).toBe('task:status@1')
  })

  it('keep their keys apart from the default family and from other versions', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store })
    const v1 = cache.family<string, string>({ name: 'task', key: (id) => id })
    const v2 = cache.family<string, { s: string }>({ name: 'task', version: 2, key: (id) => id })
    await cache.set('1', 'plain')
    await v1.set('1', 'version 1')
    await v2.set('1', { s: 'version 2' })
    expect(cache.peek('1')).toBe('plain')
    expect(v1.peek('1')).toBe('version 1')
    expect(v2.peek('1')).toEqual({ s: 'version 2' })
    expect(store.keys().sort()).toEqual(['tiercache:default@1:{1}', 'tiercache:task@1:{1}', 'tiercache:task@2:{1}'])
    await v2.delete('1')
    expect(store.keys().sort()).toEqual(['tiercache:default@1:{1}', 'tiercache:task@1:{1}'])
  })

  it('use their own ttl and grace over the cache defaults', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1h', jitter: 0 })
    const progress = cache.family<string, number>({ name: 'progress', ttl: '2m', key: (id) => id })
    await progress.set('1', 10)
    clock.advance(120_000)
    expect(progress.peek('1')).toBeUndefined()
  })

  it('count per family and in total', async () => {
    const cache = cacheFor()
    const a = cache.family<string, number>({ name: 'a', key: (id) => id })
    const b = cache.family<string, number>({ name: 'b', key: (id) => id })
    await a.getOrSet('1', () => 1)
    await a.getOrSet('1', () => 1)
    await b.getOrSet('1', () => 1)
    const stats = cache.stats()
    expect(stats.families['a@1']).toMatchObject({ l1Hits: 1, misses: 1, loaderCalls: 1 })
    expect(stats.families['b@1']).toMatchObject({ l1Hits: 0, misses: 1, loaderCalls: 1 })
    expect(stats.total).toMatchObject({ l1Hits: 1, misses: 2, loaderCalls: 2 })
  })

  it('invalidate() works without L2 too (local generations)', async () => {
    const cache = cacheFor()
    const list = cache.family<number, string>({ name: 'list', generational: true, key: (p) => `${p}` })
    await list.set(1, 'x')
    await list.invalidate()
    expect(list.peek(1)).toBeUndefined()
  })

  it('refuse invalidate() when not generational, and bad definitions, naming the option', async () => {
    const cache = cacheFor()
    const plain = cache.family<number, string>({ name: 'plain', key: (p) => `${p}` })
    await expect(plain.invalidate()).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(plain.invalidateGroup('g')).rejects.toThrow(/generational/)
    expect(() => cache.family({ name: 'a@b', key: () => '' })).toThrow(/^family\.name: must not contain/)
    expect(() => cache.family({ name: 'x', version: 0, key: () => '' })).toThrow(/^family\.version/)
    expect(() => cache.family({ name: 'x', key: 'nope' as never })).toThrow(/^family\.key/)
    expect(() => cache.family({ name: 'default', key: () => '' })).toThrow(/default family/)
  })

  it('validate L2 values with the schema and keep what it parses', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store })
    const schema = z.object({ id: z.string(), status: z.string() })
    await cache.family({ name: 't', key: (id: string) => id }).set('1', { id: '1', status: 'ok' })
    const other = cacheFor({ l2: store })
    const typed = other.family({ name: 't', key: (id: string) => id, schema })
    expect(await typed.get('1')).toEqual({ id: '1', status: 'ok' })
  })

  it('purge() deletes in L2 what older generations left, and keeps the current entries', async () => {
    const store = memoryStore({ namespace: 'purge' })
    const cache = cacheFor({ l2: store, l2Timeout: '1s' })
    const pages = cache.family<{ host: string; page: number }, string>({
      name: 'pages',
      key: (p) => `${p.host}:${p.page}`,
      generational: { group: (p) => p.host },
    })
    const plain = cache.family<string, string>({ name: 'plain', key: (id) => id })
    await pages.set({ host: 'h1', page: 1 }, 'first generation')
    await pages.set({ host: 'h2', page: 1 }, 'first generation')
    await plain.set('a', 'plain')
    await pages.invalidate()
    await pages.set({ host: 'h1', page: 1 }, 'second generation')
    await pages.invalidateGroup('h1') // the older group generation under the current family one stays
    await pages.set({ host: 'h1', page: 1 }, 'second generation, group bumped')
    expect(store.keys().filter((k) => k.includes(':pages@1'))).toHaveLength(4)

    expect(await pages.purge()).toBe(2)
    expect(store.keys().filter((k) => k.includes(':pages@1'))).toHaveLength(2)
    expect(await pages.get({ host: 'h1', page: 1 })).toBe('second generation, group bumped')
    expect(await plain.purge()).toBe(0)
    expect(await plain.get('a')).toBe('plain')

    // Without L2 there is nothing to purge.
    expect(await cacheFor().family({ name: 'l1-only', key: (k: string) => k }).purge()).toBe(0)
  })
})
