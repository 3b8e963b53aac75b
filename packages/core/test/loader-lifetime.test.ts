import { describe, expect, it } from 'vitest'
import { InvalidOptionsError, LoaderError, memoryBackend, memoryStore } from '../src/index.js'
import { cacheFor, fakeClock } from './helpers.js'

describe('a loader chooses its value lifetime (ctx.setTtl, ctx.setGrace)', () => {
  it('setTtl replaces the TTL of the loaded value in L1 and L2; other keys keep the cache TTL', async () => {
    const clock = fakeClock()
    const backend = memoryBackend()
    const cache = cacheFor({ l2: memoryStore({ clock, backend }), clock, ttl: '1m', jitter: 0 })
    await cache.getOrSet('finished', (ctx) => {
      ctx.setTtl('1h')
      return 'done'
    })
    await cache.getOrSet('running', () => 'running')
    clock.advance(120_000)
    expect(cache.peek('finished')).toBe('done')
    expect(cache.peek('running')).toBeUndefined()
    // L2 carries the same lifetime: a process with an empty L1 finds it.
    const other = cacheFor({ l2: memoryStore({ clock, backend }), clock, ttl: '1m', jitter: 0 })
    expect(await other.get('finished')).toBe('done')
    expect(await other.get('running')).toBeUndefined()
    clock.advance(3_600_000)
    expect(cache.peek('finished')).toBeUndefined()
  })

  it('a write still invalidates a value the loader gave a long TTL', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', jitter: 0 })
    await cache.getOrSet('k', (ctx) => {
      ctx.setTtl('1d')
      return 'old'
    })
    await cache.set('k', 'new')
    expect(await cache.get('k')).toBe('new')
  })

  it('setGrace gives the value a grace its cache has not: a failing loader is answered with it', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ l2: memoryStore({ clock }), clock, ttl: '1m', grace: 0, jitter: 0 })
    await cache.getOrSet('k', (ctx) => {
      ctx.setGrace('1h')
      return 'kept'
    })
    await cache.getOrSet('plain', () => 'gone')
    clock.advance(120_000)
    const fail = () => {
      throw new Error('database down')
    }
    expect(await cache.getOrSet('k', fail)).toBe('kept')
    await expect(cache.getOrSet('plain', fail)).rejects.toBeInstanceOf(LoaderError)
  })

  it('a bad duration fails the load with an error naming the call', async () => {
    const cache = cacheFor({ l2: memoryStore() })
    const failed = await cache
      .getOrSet('k', (ctx) => {
        ctx.setTtl('soon')
        return 'v'
      })
      .catch((error: unknown) => error)
    expect(failed).toBeInstanceOf(LoaderError)
    const cause = (failed as LoaderError).cause
    expect(cause).toBeInstanceOf(InvalidOptionsError)
    expect(cause).toMatchObject({ path: 'setTtl' })
    expect(await cache.get('k')).toBeUndefined()
  })
})
