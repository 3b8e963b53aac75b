import { describe, expect, it } from 'vitest'
import { cacheFor, fakeClock } from './helpers.js'

describe('L1', () => {
  it('answers a fresh hit with the settled promise of the fill, without calling the loader', async () => {
    const cache = cacheFor({ jitter: 0 })
    let calls = 0
    await cache.getOrSet('k', () => ++calls)
    const first = cache.getOrSet('k', () => ++calls)
    const second = cache.getOrSet('k', () => ++calls)
    expect(first).toBe(second)
    expect(cache.get('k')).toBe(first)
    expect(await first).toBe(1)
    expect(calls).toBe(1)
    expect(cache.stats().total.l1Hits).toBe(3)
  })

  it('deleting the last entry leaves it empty, and the entry that keeps it from resetting costs no capacity', async () => {
    for (const l1 of [{ maxEntries: 3 }, { maxEntries: 3, maxBytes: 1_000 }]) {
      const cache = cacheFor({ l1 })
      await cache.set('a', 1)
      await cache.delete('a')
      expect(cache.peek('a')).toBeUndefined()
      expect(cache.stats().l1.entries).toBe(0)
      if (l1.maxBytes !== undefined) expect(cache.stats().l1.bytes).toBe(0)
      await cache.set('a', 1)
      await cache.set('b', 2)
      await cache.set('c', 3)
      expect([cache.peek('a'), cache.peek('b'), cache.peek('c')]).toEqual([1, 2, 3])
      expect(cache.stats().l1.entries).toBe(3)
      await cache.close()
    }
  })

  it('expires entries at their ttl on the injected clock', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1m', jitter: 0 })
    await cache.getOrSet('k', () => 'v1')
    clock.advance(59_999)
    expect(cache.peek('k')).toBe('v1')
    clock.advance(1)
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.getOrSet('k', () => 'v2')).toBe('v2')
  })

  it('applies jitter as a fraction taken off the ttl', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: 1_000, jitter: 0.5 })
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
    for (const key of keys) await cache.set(key, 1)
    clock.advance(499)
    expect(keys.every((k) => cache.peek(k) === 1)).toBe(true)
    clock.advance(501)
    expect(keys.every((k) => cache.peek(k) === undefined)).toBe(true)
  })

  it('caps the L1 copy with l1Ttl', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '1h', l1: { ttl: '10s' }, jitter: 0 })
    await cache.set('k', 1)
    clock.advance(9_999)
    expect(cache.peek('k')).toBe(1)
    clock.advance(1)
    expect(cache.peek('k')).toBeUndefined()
    await cache.set('j', 1, { l1Ttl: 100 })
    clock.advance(100)
    expect(cache.peek('j')).toBeUndefined()
  })

  it('is bounded by entries', async () => {
    const cache = cacheFor({ l1: { maxEntries: 3 } })
    for (const key of ['a', 'b', 'c', 'd']) await cache.set(key, key)
    expect(cache.peek('a')).toBeUndefined()
    expect(cache.peek('d')).toBe('d')
    expect(cache.stats().l1.entries).toBe(3)
  })

  it('is bounded by bytes, with sizes computed once at fill', async () => {
    let measured = 0
    const cache = cacheFor({
      l1: {
        maxBytes: 100,
        sizeOf: (v) => {
          measured++
          return (v as string).length
        },
      },
    })
    await cache.set('a', 'x'.repeat(40))
    await cache.set('b', 'x'.repeat(40))
    expect(cache.stats().l1.bytes).toBe(80)
    await cache.set('c', 'x'.repeat(40))
    expect(cache.peek('a')).toBeUndefined()
    expect(cache.stats().l1.bytes).toBe(80)
    for (let i = 0; i < 10; i++) cache.peek('c')
    expect(measured).toBe(3)
  })

  it('deep-freezes plain objects and arrays at fill, and never throws on what cannot be frozen', async () => {
    const cache = cacheFor()
    const value = {
      nested: { list: [1, { deep: true }] },
      bytes: Buffer.from('abc'),
      typed: new Uint8Array([1, 2]),
      map: new Map([['a', 1]]),
      when: new Date(0),
    }
    const got = await cache.getOrSet('k', () => value)
    expect(got).toBe(value)
    expect(Object.isFrozen(got)).toBe(true)
    expect(Object.isFrozen(got.nested.list[1])).toBe(true)
    expect(() => {
      ;(got.nested.list as unknown[]).push(2)
    }).toThrow(TypeError)
    got.bytes[0] = 120
    expect(got.bytes.toString()).toBe('xbc')
    // Documented: a frozen Map keeps mutable contents.
    got.map.set('b', 2)
    expect(got.map.size).toBe(2)
  })

  it("'clone' copies on write and on every read", async () => {
    const cache = cacheFor({ l1: { immutability: 'clone' } })
    const value = { n: 1 }
    await cache.set('k', value)
    value.n = 2
    const a = (await cache.get<{ n: number }>('k')) as { n: number }
    expect(a.n).toBe(1)
    a.n = 3
    expect(cache.peek<{ n: number }>('k')?.n).toBe(1)
    expect(Object.isFrozen(a)).toBe(false)
  })

  it("'none' shares the stored object as is", async () => {
    const cache = cacheFor({ l1: { immutability: 'none' } })
    const value = { n: 1 }
    await cache.set('k', value)
    expect(cache.peek('k')).toBe(value)
    expect(Object.isFrozen(value)).toBe(false)
  })

  it('peek is synchronous and never loads', async () => {
    const cache = cacheFor()
    expect(cache.peek('k')).toBeUndefined()
    await cache.set('k', 'v')
    const peeked = cache.peek('k')
    expect(peeked).toBe('v')
  })
})
