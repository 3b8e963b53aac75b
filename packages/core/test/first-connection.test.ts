import { describe, expect, it, onTestFinished } from 'vitest'
import { createTieredCache, memoryStore, type RemoteStore } from '@tiercache/core'

/** A memory store whose first connection is made when the test says so. */
function connectingStore() {
  const store = memoryStore()
  let settle!: (connected: boolean) => void
  const opening = new Promise<boolean>((resolve) => (settle = resolve))
  let connected = false
  let failing = false
  const calls: string[] = []
  const guarded = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'connecting') return () => (connected ? undefined : opening)
      if (name === 'ready') return async () => connected
      const member: unknown = Reflect.get(target, name, receiver)
      if (typeof member !== 'function' || name === 'close') return member
      return (...args: unknown[]) => {
        calls.push(String(name))
        // A client with no offline queue fails every command until it is connected.
        if (!connected || failing) return Promise.reject(new Error('Stream isn\'t writeable and enableOfflineQueue options is false'))
        return (member as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  }) as RemoteStore
  return {
    store: guarded,
    calls,
    connect: () => ((connected = true), settle(true)),
    refuse: () => ((failing = true), settle(false)),
  }
}

describe('the first connection to the store', () => {
  it('holds calls issued while it is made, then runs them: nothing is counted as an error', async () => {
    const fake = connectingStore()
    const cache = createTieredCache({ l2: fake.store, l2Timeout: 60_000, breaker: { volumeThreshold: 1 } })
    onTestFinished(() => cache.close())
    const writes = [cache.set('a', 1), cache.set('b', 2)]
    await Promise.resolve()
    expect(fake.calls).toEqual([])
    fake.connect()
    await Promise.all(writes)
    expect(fake.calls.filter((name) => name === 'set')).toEqual(['set', 'set'])
    expect(cache.stats().total.l2Errors).toBe(0)
    expect(cache.stats().breaker.state).toBe('closed')
    expect(await cache.ready()).toStrictEqual({ l2: true, bus: false })
  })

  it('a call still waiting at the L2 timeout fails without reaching the breaker; once the attempt fails, calls count as usual', async () => {
    const fake = connectingStore()
    const cache = createTieredCache({ l2: fake.store, l2Timeout: 5, breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 } })
    onTestFinished(() => cache.close())
    // The writer does not see it: the failed write queues a delete for recovery.
    await cache.set('a', 1)
    expect(fake.calls).toEqual([])
    expect(cache.stats().total.l2Errors).toBe(1)
    expect(cache.stats().breaker.state).toBe('closed')

    fake.refuse()
    await new Promise((resolve) => setImmediate(resolve))
    await cache.set('b', 2)
    expect(fake.calls).not.toEqual([])
    expect(cache.stats().breaker.state).toBe('open')
  })
})
