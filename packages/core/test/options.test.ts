import { describe, expect, it } from 'vitest'
import { DEFAULTS, InvalidOptionsError, TierCacheError, createTieredCache, memoryStore, parseDuration } from '../src/index.js'
import { resolveOptions } from '../src/options.js'

describe('parseDuration', () => {
  it.each([
    [250, 250],
    ['100ms', 100],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1.5s', 1_500],
  ])('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each([['5 minutes'], ['-1s'], [''], ['10'], [-5], [Number.NaN], [Infinity]])('rejects %s with a clear error', (input) => {
    const error = (() => {
      try {
        parseDuration(input as string, 'ttl')
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(InvalidOptionsError)
    expect((error as InvalidOptionsError).code).toBe('E_INVALID_OPTIONS')
    expect((error as Error).message).toMatch(/^ttl: expected/)
  })
})

describe('options', () => {
  it('resolves every default into a frozen object', () => {
    const o = resolveOptions()
    expect(Object.isFrozen(o)).toBe(true)
    expect(Object.isFrozen(o.l1)).toBe(true)
    expect(o.ttl).toBe(300_000)
    expect(o.grace).toBe(0)
    expect(o.jitter).toBe(0.1)
    expect(o.l1.maxEntries).toBe(10_000)
    expect(o.l1.immutability).toBe('freeze')
    expect(o.l2Timeout).toBe(50)
    expect(o.breaker).toEqual({ volumeThreshold: 5, errorThresholdPercentage: 50, resetTimeout: 1_000, rollingCountTimeout: 10_000 })
    expect(o.recoveryQueue.maxSize).toBe(10_000)
    expect(o.unhealthyL1Cap).toBe(1_000)
    expect(o.lease).toEqual({ ttl: 10_000, waitTimeout: 2_000, pollInterval: 20 })
    expect(o.stampedeProtection).toBe(true)
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
  })

  it.each([
    [{ l1: { maxEntries: -5 } }, /^l1\.maxEntries: expected a positive integer \(got -5\)/],
    [{ ttl: '5 minutes' }, /^ttl: expected a duration/],
    [{ jitter: 2 }, /^jitter: expected a number between 0 and 1 \(got 2\)/],
    [{ l1: { immutability: 'deep' } }, /^l1\.immutability: expected 'freeze', 'clone' or 'none'/],
    [{ breaker: { resetTimeout: 'soon' } }, /^breaker\.resetTimeout: expected a duration/],
    [{ l2: {} }, /^l2: expected a RemoteStore/],
    [{ ttlx: 1 }, /unknown option\(s\) ttlx/],
    [{ timeout: '2s', hardTimeout: '1s' }, /^timeout: must be shorter than hardTimeout/],
    [{ l1: { sizeOf: () => 1 } }, /^l1\.sizeOf: only applies with l1\.maxBytes/],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => createTieredCache(options as never)).toThrow(message)
    try {
      createTieredCache(options as never)
    } catch (error) {
      expect(error).toBeInstanceOf(TierCacheError)
      expect((error as TierCacheError).code).toBe('E_INVALID_OPTIONS')
    }
  })

  it('validates per-call options off the hit path, naming them', async () => {
    const cache = createTieredCache({ l2: memoryStore() })
    await expect(cache.getOrSet('k', () => 1, { ttl: 'never' })).rejects.toThrow(/^options\.ttl: expected/)
    await cache.close()
  })
})
