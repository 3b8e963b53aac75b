import type { BreakerState, StoreKey } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace, type RedisServer } from '@tiercache/testkit'
import { createRedisCache, redisStore } from '../src/index.js'

// The engine's guard and breaker with the Redis store against real faults: a crashed server
// (SIGKILL), a frozen one (SIGSTOP: calls hang until the guard's timeout), a restart on the port.

const defaultKey = (id: string): StoreKey => ({ family: 'default@1', generation: '', id })
const entry = (value: unknown) => ({ value, expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 60_000 })

/** Repeats `step` until `condition` holds: outages end by events, not after fixed sleeps. */
async function until(condition: () => boolean | Promise<boolean>, step: () => Promise<unknown> = async () => {}): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error('condition not reached within 30 s')
    await step()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function open(server: RedisServer, resetTimeout = '1s') {
  const namespace = uniqueNamespace('outage')
  const cache = createRedisCache({
    redis: { host: server.host, port: server.port },
    namespace,
    bus: false,
    ttl: '1m',
    l2Timeout: '200ms',
    breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout, rollingCountTimeout: '2s' },
    store: { commandTimeout: 500, connectTimeout: 500 },
  })
  // A second store on the same namespace: what another process would see in Redis.
  const view = redisStore({ redis: server.url, namespace, commandTimeout: 500, connectTimeout: 500 })
  onTestFinished(async () => {
    await cache.close()
    await view.close()
  })
  const states: BreakerState[] = []
  cache.on('breaker', ({ state }) => states.push(state))
  const loads: string[] = []
  let n = 0
  const read = (key = `read-${n++}`) =>
    cache.getOrSet(key, async () => {
      loads.push(key)
      return `loaded:${key}`
    })
  await cache.store.ready()
  await view.ready()
  return { cache, view, states, loads, read }
}

/** Reads during the outage: every one answers with the loader's value, none rejects. */
async function readThroughOutage(read: (key?: string) => Promise<string>, states: BreakerState[]): Promise<void> {
  const keys = Array.from({ length: 8 }, (_, i) => `outage-${i}-${Math.random()}`)
  expect(await Promise.all(keys.map((key) => read(key)))).toStrictEqual(keys.map((key) => `loaded:${key}`))
  await until(
    () => states.includes('open'),
    async () => expect(await read('x')).toBe('loaded:x'),
  )
}

describe('cache over Redis through outages', () => {
  it('serves loader values while Redis is killed, and uses L2 again once it is restarted', async () => {
    await using server = await startRedis()
    const { cache, view, states, loads, read } = await open(server)
    await cache.set('before', 'cached')
    expect((await view.get(defaultKey('before')))?.value).toBe('cached')

    await server.kill()
    await readThroughOutage(read, states)
    await server.restart()
    await until(
      () => states.at(-1) === 'closed',
      () => read(),
    )
    expect(states).toContain('half-open')

    await until(async () => {
      try {
        await view.set(defaultKey('fresh'), entry('from-l2'))
        return true
      } catch {
        return false
      }
    })
    expect(await read('fresh')).toBe('from-l2')
    expect(loads).not.toContain('fresh')
  })

  it('gives up on a frozen Redis at the guard timeout, and replays deletes made meanwhile', async () => {
    await using server = await startRedis()
    // A long reset: the delete below must meet an open breaker (not a half-open probe that would
    // reach the frozen server and run when it resumes).
    const { cache, view, states, loads, read } = await open(server, '5s')
    await cache.set('victim', 'old')
    expect((await view.get(defaultKey('victim')))?.value).toBe('old')

    server.pause()
    try {
      await readThroughOutage(read, states)
      // The breaker is open: this delete is not sent to Redis, it waits in the recovery queue.
      await cache.delete('victim')
      expect(cache.stats().recoveryQueueDepth).toBe(1)
      expect(await cache.get('victim')).toBeUndefined()
    } finally {
      server.resume()
    }
    expect((await view.get(defaultKey('victim')))?.value).toBe('old')

    const replayed = new Promise((resolve) => cache.on('recovery-replayed', resolve))
    await until(
      () => states.at(-1) === 'closed',
      () => read(),
    )
    expect(states).toEqual(expect.arrayContaining(['open', 'half-open', 'closed']))
    await replayed
    expect(await view.get(defaultKey('victim'))).toBeUndefined()
    expect(cache.stats().recoveryQueueDepth).toBe(0)

    await view.set(defaultKey('fresh'), entry('from-l2'))
    expect(await read('fresh')).toBe('from-l2')
    expect(loads).not.toContain('fresh')
  })

  it('keeps serving through a restart on the same port, then reads L2 again', async () => {
    await using server = await startRedis()
    const { view, read } = await open(server)
    expect(await read('a')).toBe('loaded:a')
    await server.restart()
    const keys = Array.from({ length: 20 }, (_, i) => `during-${i}`)
    for (const key of keys) expect(await read(key)).toBe(`loaded:${key}`)
    // Each attempt plants a new key in Redis and reads it through the cache: it comes from L2
    // (not the loader) once the cache's connection and breaker are back.
    let attempt = 0
    await until(async () => {
      const key = `fresh-${attempt++}`
      try {
        await view.set(defaultKey(key), entry('from-l2'))
      } catch {
        return false
      }
      return (await read(key)) === 'from-l2'
    })
  })
})
