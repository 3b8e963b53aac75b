import { describe, expect, it } from 'vitest'
import { LoaderError, LoaderTimeoutError, type LoaderContext } from '../src/index.js'
import { cacheFor, deferred, fakeClock, nextEvent } from './helpers.js'

describe('single-flight', () => {
  it('runs one loader for N concurrent misses and gives all of them its result', async () => {
    const cache = cacheFor()
    const gate = deferred<string>()
    let calls = 0
    const loader = () => {
      calls++
      return gate.promise
    }
    const pending = Array.from({ length: 100 }, () => cache.getOrSet('k', loader))
    gate.resolve('v')
    expect(await Promise.all(pending)).toEqual(Array(100).fill('v'))
    expect(calls).toBe(1)
    expect(cache.stats().total.loaderCalls).toBe(1)
  })

  it('gives all of them the error, and does not cache a failed load', async () => {
    const cache = cacheFor()
    const gate = deferred<string>()
    let calls = 0
    const pending = Array.from({ length: 10 }, () =>
      cache.getOrSet('k', () => {
        calls++
        return gate.promise
      }),
    )
    const cause = new Error('db down')
    gate.reject(cause)
    const results = await Promise.allSettled(pending)
    expect(calls).toBe(1)
    for (const result of results) {
      expect(result.status).toBe('rejected')
      const error = (result as PromiseRejectedResult).reason as LoaderError
      expect(error).toBeInstanceOf(LoaderError)
      expect(error.code).toBe('E_LOADER')
      expect(error.key).toBe('k')
      expect(error.cause).toBe(cause)
    }
    expect(await cache.getOrSet('k', () => 'ok')).toBe('ok')
    expect(cache.stats().total.loaderErrors).toBe(1)
  })

  it('wraps a loader that throws synchronously', async () => {
    const cache = cacheFor()
    await expect(
      cache.getOrSet('k', () => {
        throw new Error('sync')
      }),
    ).rejects.toBeInstanceOf(LoaderError)
  })

  it('does not cache null unless negative caching is on', async () => {
    const cache = cacheFor()
    let calls = 0
    await cache.getOrSet('k', () => (calls++, null))
    await cache.getOrSet('k', () => (calls++, null))
    expect(calls).toBe(2)
    await cache.getOrSet('n', () => (calls++, null), { negativeCaching: true })
    expect(await cache.getOrSet('n', () => (calls++, 'x'))).toBeNull()
    expect(calls).toBe(3)
    const negative = cacheFor({ negativeCaching: true })
    await negative.getOrSet('k', () => null)
    expect(negative.peek('k')).toBeNull()
  })
})

describe('fail-safe', () => {
  it('serves the stale copy within grace when the loader fails, with an event and a counter', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1m', grace: '10m', jitter: 0 })
    await cache.getOrSet('k', () => 'old')
    clock.advance(120_000)
    const event = nextEvent((l) => cache.on('stale-served', l))
    const seen: unknown[] = []
    const value = await cache.getOrSet('k', (ctx: LoaderContext<string>) => {
      seen.push(ctx.staleValue)
      throw new Error('db down')
    })
    expect(value).toBe('old')
    expect(seen).toEqual(['old'])
    expect(await event).toEqual({ key: 'k', family: 'default@1', reason: 'loader-error' })
    expect(cache.stats().total.staleServed).toBe(1)
    expect(cache.stats().total.loaderErrors).toBe(1)
  })

  it('fails with LoaderError once the grace period is over', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1m', grace: '10m', jitter: 0 })
    await cache.getOrSet('k', () => 'old')
    clock.advance(60_000 + 600_000)
    await expect(
      cache.getOrSet('k', () => {
        throw new Error('db down')
      }),
    ).rejects.toBeInstanceOf(LoaderError)
  })

  it('emits loader-error with the key and the error', async () => {
    const cache = cacheFor()
    const event = nextEvent((l) => cache.on('loader-error', l))
    const cause = new Error('x')
    await cache
      .getOrSet('k', () => {
        throw cause
      })
      .catch(() => {})
    expect(await event).toMatchObject({ key: 'k', error: cause })
  })
})

describe('timeouts', () => {
  it('hard timeout fails the load with LoaderTimeoutError and aborts the signal', async () => {
    const cache = cacheFor()
    let signal: AbortSignal | undefined
    const error = await cache
      .getOrSet(
        'k',
        (ctx) => {
          signal = ctx.signal
          return new Promise<never>(() => {})
        },
        { hardTimeout: 20 },
      )
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LoaderTimeoutError)
    expect((error as LoaderTimeoutError).code).toBe('E_LOADER_TIMEOUT')
    expect(signal?.aborted).toBe(true)
    expect(cache.stats().total.loaderTimeouts).toBe(1)
    // The failed flight is gone: the next call loads again.
    expect(await cache.getOrSet('k', () => 'v')).toBe('v')
  })

  it('hard timeout with a stale copy within grace serves the stale copy', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1m', grace: '1h', jitter: 0 })
    await cache.set('k', 'old')
    clock.advance(61_000)
    expect(await cache.getOrSet('k', () => new Promise<string>(() => {}), { hardTimeout: 10 })).toBe('old')
    expect(cache.stats().total.staleServed).toBe(1)
  })

  it('soft timeout serves the stale copy and lets the load finish in the background', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1m', grace: '1h', jitter: 0 })
    await cache.set('k', 'old')
    clock.advance(61_000)
    const gate = deferred<string>()
    let calls = 0
    const loader = () => {
      calls++
      return gate.promise
    }
    expect(await cache.getOrSet('k', loader, { timeout: 10 })).toBe('old')
    // Still loading: a second caller joins the running load instead of starting another.
    expect(await cache.getOrSet('k', loader, { timeout: 10 })).toBe('old')
    expect(calls).toBe(1)
    gate.resolve('new')
    await gate.promise
    await new Promise((r) => setImmediate(r))
    expect(cache.peek('k')).toBe('new')
  })

  it('without a stale copy the soft timeout does not apply', async () => {
    const cache = cacheFor()
    const gate = deferred<string>()
    const pending = cache.getOrSet('k', () => gate.promise, { timeout: 5 })
    await new Promise((r) => setTimeout(r, 20))
    gate.resolve('v')
    expect(await pending).toBe('v')
  })
})
