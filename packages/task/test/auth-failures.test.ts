import { describe, expect, it } from 'vitest'
import { createAuthFailureLimiter, DEFAULT_MAX_ADDRESSES } from '../src/auth-failures.js'

function limiter(options: { maxFailures?: number; windowMs?: number; maxAddresses?: number } = {}) {
  const clock = { t: 1_000, now: () => clock.t }
  const limits = createAuthFailureLimiter({ maxFailures: 3, windowMs: 10_000, clock, ...options })
  return { limits, clock }
}

describe('auth failure limiter', () => {
  it('blocks an address for the window from its last counted failure, then forgets it', () => {
    const { limits, clock } = limiter()
    limits.recordFailure('10.0.0.1')
    clock.t += 4_000
    limits.recordFailure('10.0.0.1')
    expect(limits.blockedFor('10.0.0.1')).toBe(0)
    clock.t += 1_000
    limits.recordFailure('10.0.0.1')
    expect(limits.blockedFor('10.0.0.1')).toBe(10_000)
    clock.t += 9_999
    expect(limits.blockedFor('10.0.0.1')).toBe(1)
    clock.t += 1
    expect(limits.blockedFor('10.0.0.1')).toBe(0)
    expect(limits.size).toBe(0)
  })

  it('counts only the failures within one window', () => {
    const { limits, clock } = limiter()
    limits.recordFailure('10.0.0.1')
    limits.recordFailure('10.0.0.1')
    clock.t += 10_000
    limits.recordFailure('10.0.0.1')
    limits.recordFailure('10.0.0.1')
    expect(limits.blockedFor('10.0.0.1')).toBe(0)
    limits.recordFailure('10.0.0.1')
    expect(limits.blockedFor('10.0.0.1')).toBe(10_000)
  })

  it('keeps addresses apart', () => {
    const { limits } = limiter({ maxFailures: 1 })
    limits.recordFailure('10.0.0.1')
    expect(limits.blockedFor('10.0.0.1')).toBe(10_000)
    expect(limits.blockedFor('10.0.0.2')).toBe(0)
    expect(limits.blockedFor('::ffff:10.0.0.1')).toBe(0)
  })

  it('keeps at most maxAddresses, dropping the one that failed least recently', () => {
    const { limits } = limiter({ maxFailures: 1, maxAddresses: 3 })
    for (const address of ['a', 'b', 'c']) limits.recordFailure(address)
    limits.recordFailure('a') // a failed again: b is now the oldest
    limits.recordFailure('d')
    expect(limits.size).toBe(3)
    expect(limits.blockedFor('b')).toBe(0)
    for (const address of ['a', 'c', 'd']) expect(limits.blockedFor(address), address).toBeGreaterThan(0)
  })

  it(`holds ${DEFAULT_MAX_ADDRESSES} addresses by default, however many fail`, () => {
    const { limits } = limiter({ maxFailures: 1 })
    for (let i = 0; i <= DEFAULT_MAX_ADDRESSES + 500; i++) limits.recordFailure(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`)
    expect(limits.size).toBe(DEFAULT_MAX_ADDRESSES)
    expect(limits.blockedFor('10.0.0.0')).toBe(0)
    expect(limits.blockedFor(`10.0.${(DEFAULT_MAX_ADDRESSES + 500) >> 8}.${(DEFAULT_MAX_ADDRESSES + 500) & 255}`)).toBe(10_000)
  })
})
