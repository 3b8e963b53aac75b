// A service may take the verbs off the cache (`const { getOrSet } = cache`, or pass
// `cache.getOrSet` as a callback) while the bus is healthy. When the bus then goes unhealthy
// (here: Redis paused with SIGSTOP, which shows no disconnect), those held functions must apply
// the same L1 cap as the cache's own: no L1 copy older than `unhealthyL1Cap` is served.
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace } from '@tiercache/testkit'
import { createRedisCache } from '../src/index.js'

/** A clock the test moves: the cap is passed without sleeping. */
function steppedClock() {
  let offset = 0
  return { now: () => Date.now() + offset, advance: (ms: number) => void (offset += ms) }
}

describe('verbs held off the cache', () => {
  it('honour unhealthyL1Cap once the bus is unhealthy (Redis paused)', async () => {
    await using server = await startRedis()
    const clock = steppedClock()
    const cache = createRedisCache({
      redis: server.url,
      namespace: uniqueNamespace('held'),
      ttl: '1h',
      unhealthyL1Cap: '1s',
      l2Timeout: '100ms',
      clock,
      bus: { heartbeatInterval: 40, heartbeatTimeout: 200 },
    })
    onTestFinished(() => cache.close())
    expect(await cache.ready()).toStrictEqual({ l2: true, bus: true })

    // Taken while the bus is healthy.
    const { getOrSet, get, peek } = cache
    const loads: string[] = []
    const loader = (value: string) => async () => {
      loads.push(value)
      return value
    }
    expect(await getOrSet('k', loader('v1'))).toBe('v1')
    expect(await getOrSet('k', loader('unused'))).toBe('v1')
    expect(peek('k')).toBe('v1')
    expect(await get('k')).toBe('v1')
    expect(loads).toEqual(['v1'])

    const unhealthy = new Promise<void>((resolve) => {
      const off = cache.on('bus-health', ({ healthy }) => {
        if (healthy) return
        off()
        resolve()
      })
    })
    server.pause()
    try {
      await unhealthy
      // Within the cap the copy is still served, held or not...
      expect(peek('k')).toBe('v1')
      // ...past it, no longer: not by the held functions, not by the cache's own.
      clock.advance(1_001)
      expect(peek('k')).toBeUndefined()
      expect(cache.peek('k')).toBeUndefined()
      expect(await get('k')).toBeUndefined() // L1 capped, L2 paused: a miss
      expect(await getOrSet('k', loader('v2'))).toBe('v2') // the loader answers, while Redis is paused
      expect(loads).toEqual(['v1', 'v2'])
      expect(cache.stats().busHealthy).toBe(false)
    } finally {
      server.resume()
    }
  })
})
