// A service creates its cache and serves at once: the first commands meet a client that is still
// connecting. Connecting is not failing: those commands wait for the connection (within the L2
// timeout), land in Redis, and count nowhere as errors.
import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache, type RedisCacheOptions } from '../src/index.js'

// Calls wait for the first connection within `l2Timeout`. On a machine busy with the rest of the
// suite a connection can take longer than the default 50 ms, so the tests give it room: what
// they assert is that waiting is not failing, not how fast a connection is made.
const open = (options: Omit<RedisCacheOptions, 'redis'> & { redis?: RedisCacheOptions['redis'] }) => {
  const { port } = sharedRedis()
  const cache = createRedisCache({ redis: { host: '127.0.0.1', port }, l2Timeout: '5s', ...options })
  onTestFinished(() => cache.close())
  return cache
}

const inspector = () => {
  const client = new Redis(sharedRedis().url)
  onTestFinished(() => void client.quit())
  return client
}

describe('a cache used in the tick it was created', () => {
  it('lands writes issued while the client is still connecting, with no L2 error and the breaker closed', async () => {
    const namespace = uniqueNamespace('fh')
    const cache = open({ namespace, bus: false, ttl: '1m' })
    expect(cache.store.client.status).not.toBe('ready')
    for (let i = 0; i < 5; i++) await cache.set(`t${i}`, { i })
    expect(await cache.get('t0')).toStrictEqual({ i: 0 })
    const stats = cache.stats()
    expect(stats.total.l2Errors).toBe(0)
    expect(stats.breaker).toStrictEqual({ state: 'closed', transitions: 0 })
    expect(stats.recoveryQueueDepth).toBe(0)
    // In Redis itself, read by another client: the writes did not stop at L1.
    const keys: string[] = []
    let cursor = '0'
    const redis = inspector()
    do {
      const [next, page] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
      cursor = next
      keys.push(...page)
    } while (cursor !== '0')
    expect(keys.filter((key) => /:\{t\d\}$/.test(key)).sort()).toHaveLength(5)
  })

  it('serves plain and generational families from the first call: one load each, then hits, no lease waits', async () => {
    const namespace = uniqueNamespace('fh')
    const cache = open({ namespace, ttl: '1m' })
    const status = cache.family({ name: 'status', ttl: '1m', key: (p: { id: string }) => p.id })
    const list = cache.family({ name: 'list', ttl: '1m', generational: true, key: (p: { page: number }) => String(p.page) })
    const host = cache.family({ name: 'host', ttl: '1m', generational: { group: (p: { host: string }) => p.host }, key: (p: { host: string }) => p.host })
    const loads = { status: 0, list: 0, host: 0 }
    // Each first load spans the bus's first subscription, whose L1 drop voids running loads: their
    // values stay out of L1 but still fill L2 through their leases, so the next call is an L2 hit.
    const load = async <V>(family: keyof typeof loads, value: V): Promise<V> => {
      loads[family]++
      await cache.ready()
      return value
    }
    const round = () =>
      Promise.all([
        status.getOrSet({ id: 't-1' }, () => load('status', { id: 't-1' })),
        list.getOrSet({ page: 1 }, () => load('list', { items: ['t-1'] })),
        host.getOrSet({ host: 'h-1' }, () => load('host', { tasks: ['t-1'] })),
      ])
    expect(cache.stats().busHealthy).toBe(false)
    for (let i = 0; i < 5; i++) expect(await round()).toStrictEqual([{ id: 't-1' }, { items: ['t-1'] }, { tasks: ['t-1'] }])
    expect(loads).toStrictEqual({ status: 1, list: 1, host: 1 })
    const stats = cache.stats()
    expect(stats.busHealthy).toBe(true)
    expect(stats.total.l2Hits).toBe(3)
    expect(stats.total.l1Hits).toBe(9)
    expect(stats.total.leaseWaits).toBe(0)
    expect(stats.total.l2Errors).toBe(0)
    expect(stats.breaker.state).toBe('closed')
  })

  it("publishes the invalidations of writes made while connecting: another node's L1 drops its copy", async () => {
    const namespace = uniqueNamespace('fh')
    const reader = open({ namespace, ttl: '1m' })
    await reader.ready()
    expect(await reader.getOrSet('task-1', async () => ({ status: 'old' }))).toStrictEqual({ status: 'old' })
    const applied = new Promise<void>((resolve) => reader.on('bus:applied', () => resolve()))
    const writer = open({ namespace, ttl: '1m' })
    await writer.set('task-1', { status: 'new' })
    await applied
    expect(await reader.get('task-1')).toStrictEqual({ status: 'new' })
    expect(writer.stats().total.l2Errors).toBe(0)
  })

  it('ready() reports a connected L2 and a healthy bus, and resolves false for neither when Redis is not there', async () => {
    const cache = open({ namespace: uniqueNamespace('fh') })
    expect(await cache.ready()).toStrictEqual({ l2: true, bus: true })
    expect(cache.stats().busHealthy).toBe(true)

    const server = await startRedis()
    const port = server.port
    await server.stop()
    const away = createRedisCache({ redis: { host: '127.0.0.1', port }, namespace: uniqueNamespace('fh') })
    onTestFinished(() => away.close())
    expect(await away.ready({ timeout: 300 })).toStrictEqual({ l2: false, bus: false })
    // Serving still works, from the loader, and the down Redis is counted as such.
    expect(await away.getOrSet('k', async () => 'from the loader')).toBe('from the loader')
  })

  it('ready() names a bad timeout', async () => {
    const cache = open({ namespace: uniqueNamespace('fh'), bus: false })
    await expect(cache.ready({ timeout: 'soon' as never })).rejects.toMatchObject({ code: 'E_INVALID_OPTIONS', message: expect.stringContaining('ready.timeout') })
  })
})
