import { describe, expect, expectTypeOf, it, onTestFinished, vi } from 'vitest'
import {
  type Family,
  type GetOrSetOptions,
  InvalidOptionsError,
  type SetOptions,
  type TagOptions,
  type WriteOptions,
  type TieredCache,
  memoryStore,
} from '../src/index.js'
import { cacheFor, fakeClock } from './helpers.js'

// The type assertions here are checked by `pnpm typecheck` (this file is part of the root project):
// a `@ts-expect-error` line that compiles fails the typecheck.

describe('per-call option types', () => {
  it('set, setMany and their family forms take SetOptions and tags; getOrSet takes GetOrSetOptions and tags', () => {
    expectTypeOf<keyof SetOptions>().toEqualTypeOf<'ttl' | 'grace' | 'jitter' | 'l1Ttl'>()
    expectTypeOf<keyof GetOrSetOptions>().toEqualTypeOf<
      'ttl' | 'grace' | 'jitter' | 'l1Ttl' | 'timeout' | 'hardTimeout' | 'eagerRefresh' | 'negativeCaching' | 'stampedeProtection'
    >()
    expectTypeOf<TieredCache['set']>().parameter(2).toEqualTypeOf<(SetOptions & TagOptions & WriteOptions) | undefined>()
    expectTypeOf<TieredCache['setMany']>().parameter(1).toEqualTypeOf<WriteOptions | undefined>()
    expectTypeOf<TieredCache['delete']>().parameter(1).toEqualTypeOf<WriteOptions | undefined>()
    expectTypeOf<TieredCache['setMany']>().parameter(0).toEqualTypeOf<readonly { key: string; value: unknown; options?: SetOptions & TagOptions }[]>()
    expectTypeOf<TieredCache['getOrSet']>().parameter(2).toEqualTypeOf<(GetOrSetOptions & TagOptions) | undefined>()
    expectTypeOf<Family<string, number>['set']>().parameter(2).toEqualTypeOf<(SetOptions & TagOptions & WriteOptions) | undefined>()
    expectTypeOf<Family<string, number>['invalidate']>().parameter(0).toEqualTypeOf<WriteOptions | undefined>()
    expectTypeOf<Family<string, number>['setMany']>().parameter(0).toEqualTypeOf<readonly { params: string; value: number; options?: SetOptions & TagOptions }[]>()
    expectTypeOf<Family<string, number>['getOrSet']>().parameter(2).toEqualTypeOf<(GetOrSetOptions & TagOptions) | undefined>()
    expectTypeOf<{ timeout: number }>().not.toExtend<SetOptions>()
    expectTypeOf<{ timeout: number; hardTimeout: string }>().toExtend<GetOrSetOptions>()
    // get, peek and getMany take no options at all.
    expectTypeOf<TieredCache['get']>().parameters.toEqualTypeOf<[key: string]>()
    expectTypeOf<TieredCache['getMany']>().parameters.toEqualTypeOf<[keys: readonly string[]]>()
  })

  it('a loader timeout given to set does not compile, and is refused at run time naming the option', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store, l1: { ttl: '1m' } })
    const tasks = cache.family({ name: 'task', key: (id: string) => id })
    const refusal = (key: string) => `options: Unrecognized key: "${key}" (only getOrSet takes ${key})`

    // @ts-expect-error timeout is a loader timeout: only getOrSet takes it
    const error = await cache.set('k', 1, { timeout: 1 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidOptionsError)
    expect((error as InvalidOptionsError).path).toBe('options')
    expect((error as InvalidOptionsError).message).toBe(refusal('timeout'))

    // @ts-expect-error hardTimeout is a loader timeout: only getOrSet takes it
    await expect(cache.set('k', 1, { hardTimeout: '1s' })).rejects.toThrow(refusal('hardTimeout'))
    // @ts-expect-error only getOrSet caches null results on request
    await expect(cache.set('k', null, { negativeCaching: true })).rejects.toThrow(refusal('negativeCaching'))
    // @ts-expect-error only getOrSet takes leases
    await expect(cache.set('k', 1, { stampedeProtection: false })).rejects.toThrow(refusal('stampedeProtection'))
    // @ts-expect-error setMany entries take SetOptions too
    await expect(cache.setMany([{ key: 'k', value: 1, options: { timeout: 1 } }])).rejects.toThrow(refusal('timeout'))
    // @ts-expect-error and so do family handles
    await expect(tasks.set('t', 1, { hardTimeout: 5 })).rejects.toThrow(refusal('hardTimeout'))
    // @ts-expect-error and their setMany
    await expect(tasks.setMany([{ params: 't', value: 1, options: { timeout: 1 } }])).rejects.toThrow(refusal('timeout'))

    // A refused write wrote nothing, anywhere.
    expect(cache.peek('k')).toBeUndefined()
    expect(tasks.peek('t')).toBeUndefined()
    expect(store.size).toBe(0)
  })

  it('a setMany with one bad entry changes nothing: no entry before it reaches L1, L2 or the bus', async () => {
    const store = memoryStore()
    const cache = cacheFor({ l2: store, l1: { ttl: '1m' } })
    await expect(
      cache.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: 2, options: { ttl: 'later' as never } },
      ]),
    ).rejects.toBeInstanceOf(InvalidOptionsError)
    expect(cache.peek('a')).toBeUndefined()
    expect(store.size).toBe(0)
  })

  it('refuses a misspelt option on set exactly as getOrSet does', async () => {
    const cache = cacheFor()
    const onSet = await cache.set('a', 1, { ttll: 1 } as never).catch((e: unknown) => e)
    const onGetOrSet = await cache.getOrSet('b', () => 1, { ttll: 1 } as never).catch((e: unknown) => e)
    expect(onSet).toBeInstanceOf(InvalidOptionsError)
    expect((onSet as Error).message).toBe('options: Unrecognized key: "ttll"')
    expect((onGetOrSet as Error).message).toBe((onSet as Error).message)
    await expect(cache.set('a', 1, { ttl: 'never' })).rejects.toThrow(/^options\.ttl: expected a duration/)
  })

  it('getOrSet compiles with every option and honours the loader timeouts per call', async () => {
    const cache = cacheFor()
    const options: GetOrSetOptions = { ttl: '1m', grace: 0, jitter: 0, l1Ttl: '10s', timeout: 5, hardTimeout: 10, negativeCaching: true, stampedeProtection: false }
    expect(await cache.getOrSet('n', () => null, options)).toBeNull()
    // negativeCaching, read per call: the null result is cached.
    expect(cache.peek('n')).toBeNull()
    const timedOut = await cache.getOrSet('slow', () => new Promise<never>(() => {}), { hardTimeout: 1 }).catch((e: unknown) => e)
    expect((timedOut as { code?: string }).code).toBe('E_LOADER_TIMEOUT')
  })

  it('set reads each of its options: ttl, grace and jitter in the entry written, l1Ttl for the L1 copy', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const cache = cacheFor({ l2: store, clock, l1: { ttl: '1h' } })
    const start = clock.now()
    const random = vi.spyOn(Math, 'random').mockReturnValue(1)
    onTestFinished(() => random.mockRestore())

    await cache.set('k', 'v', { ttl: '1m', grace: '10s', jitter: 0.5, l1Ttl: '5s' })
    // jitter 0.5 with Math.random() = 1 takes half the ttl off.
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })).toEqual({ value: 'v', expiresAt: start + 30_000, graceUntil: start + 40_000 })
    clock.advance(4_999)
    expect(cache.peek('k')).toBe('v')
    clock.advance(1)
    // The L1 copy ended with l1Ttl; L2 still holds the fresh entry.
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.get('k')).toBe('v')

    await cache.set('d', 'v', { jitter: 0 })
    expect(store.raw({ family: 'default@1', generation: '', id: 'd' })?.expiresAt).toBe(clock.now() + 300_000)
  })
})
