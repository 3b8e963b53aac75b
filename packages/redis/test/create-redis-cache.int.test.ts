import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedis, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache } from '../src/index.js'

describe('createRedisCache', () => {
  it('wires a store and a bus on one data connection: two nodes share L2 and invalidations', async () => {
    const { url } = sharedRedis()
    const namespace = uniqueNamespace('cache')
    const open = () => {
      const cache = createRedisCache({ redis: url, namespace, ttl: '1m' })
      onTestFinished(() => cache.close())
      return cache
    }
    const a = open()
    const b = open()
    await Promise.all([a.store.ready(), b.store.ready()])
    expect(a.bus).toBeDefined()
    await Promise.all([a, b].map((cache) => new Promise<void>((resolve) => (cache.stats().busHealthy ? resolve() : cache.on('bus-health', ({ healthy }) => healthy && resolve())))))

    await a.set('task-1', { status: 'running' })
    let loads = 0
    expect(await b.getOrSet('task-1', async () => (loads++, { status: 'loaded' }))).toStrictEqual({ status: 'running' })
    expect(loads).toBe(0)

    // B serves its L1 copy until A's message drops it; then it reads the new value from L2.
    // Checked on every applied message (the first set's message may still be on its way), and on
    // an L1 flush: on a busy machine a missed heartbeat makes the bus unhealthy, and the message
    // may then arrive as part of the recovery flush rather than as an applied message.
    const seen = new Promise<void>((resolve) => {
      const check = async () => {
        if ((await b.get<{ status: string }>('task-1'))?.status === 'done') resolve()
      }
      b.on('bus:applied', () => void check())
      b.on('l1-flushed', () => void check())
      b.on('bus-health', () => void check())
    })
    await a.set('task-1', { status: 'done' })
    await seen
  })

  it('quits the client it created on close', async () => {
    const cache = createRedisCache({ redis: sharedRedis().url, namespace: uniqueNamespace('cache'), bus: false })
    await cache.store.ready()
    expect(cache.bus).toBeUndefined()
    await cache.close()
    expect(cache.store.client.status).toBe('end')
  })

  // Timeouts far above the test's: a close() that waited for the server or for a timeout of the
  // client would hang the test.
  const patient = { connectTimeout: 600_000, commandTimeout: 600_000 }

  it('close() does not wait for a Redis that was killed and never returns', async () => {
    await using server = await startRedis()
    const cache = createRedisCache({ redis: server.url, namespace: uniqueNamespace('cache'), store: patient })
    await cache.store.ready()
    await new Promise<void>((resolve) => (cache.stats().busHealthy ? resolve() : cache.on('bus-health', ({ healthy }) => healthy && resolve())))
    await cache.set('k', 'v')
    const lost = new Promise((resolve) => cache.store.client.once('close', resolve))
    await server.kill()
    await lost
    expect(await cache.getOrSet('other', () => 'loaded')).toBe('loaded')
    await cache.close()
    expect(cache.store.client.status).not.toBe('ready')
    await expect(cache.get('k')).rejects.toMatchObject({ code: 'E_CLOSED' })
  }, 20_000)

  it('close() cuts the connection of a Redis that hangs (paused) instead of waiting for QUIT', async () => {
    await using server = await startRedis()
    const cache = createRedisCache({ redis: server.url, namespace: uniqueNamespace('cache'), store: patient })
    await cache.store.ready()
    // With the bus subscribed too: its subscriber connection must be cut as well, not QUIT.
    await new Promise<void>((resolve) => (cache.stats().busHealthy ? resolve() : cache.on('bus-health', ({ healthy }) => healthy && resolve())))
    await cache.set('k', 'v')
    server.pause()
    let ended: Promise<unknown> = Promise.resolve()
    try {
      ended = new Promise((resolve) => cache.store.client.once('end', resolve))
      await cache.close()
    } finally {
      server.resume()
    }
    // Cut, not left to reconnect: the socket ends once the server reads again.
    await ended
    expect(cache.store.client.status).toBe('end')
  }, 20_000)

  it('hands out L2 values deep-frozen with the default immutability, mutable with none', async () => {
    const { url } = sharedRedis()
    const namespace = uniqueNamespace('cache')
    const value = { task: { id: 't-1', hosts: [{ id: 'h-1', ip: '10.0.0.1' }] } }
    const writer = createRedisCache({ redis: url, namespace, ttl: '1m', bus: false })
    const frozen = createRedisCache({ redis: url, namespace, ttl: '1m', bus: false })
    const mutable = createRedisCache({ redis: url, namespace, ttl: '1m', bus: false, l1: { immutability: 'none' } })
    onTestFinished(() => Promise.all([writer, frozen, mutable].map((cache) => cache.close())).then(() => {}))
    await writer.set('k', value)
    const a = await frozen.get<typeof value>('k')
    const b = await mutable.get<typeof value>('k')
    expect(frozen.stats().total.l2Hits).toBe(1)
    expect(a).toStrictEqual(value)
    expect([a, a?.task, a?.task.hosts, a?.task.hosts[0]].every((node) => Object.isFrozen(node))).toBe(true)
    expect(b).toStrictEqual(value)
    expect([b, b?.task, b?.task.hosts, b?.task.hosts[0]].some((node) => Object.isFrozen(node))).toBe(false)
  })
})
