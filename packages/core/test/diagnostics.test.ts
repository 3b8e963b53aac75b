import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { describe, expect, it, onTestFinished } from 'vitest'
import { L2_CHANNEL, LOADER_CHANNEL, l2Channel, loaderChannel, memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type L2TraceContext, type LoaderTraceContext } from '../src/index.js'
import { cacheFor, chaos } from './helpers.js'

/** Every event of a tracing channel, as `[event, context]`, until the test ends. */
function record<C extends object>(channel: typeof loaderChannel | typeof l2Channel, name: string) {
  const seen: [string, C][] = []
  const events = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const
  const handlers = Object.fromEntries(events.map((event) => [event, (message: unknown) => seen.push([event, message as C])]))
  channel.subscribe(handlers as never)
  onTestFinished(() => void channel.unsubscribe(handlers as never))
  expect((channel as { start: { name: string } }).start.name).toBe(`tracing:${name}:start`)
  return seen
}

describe('tiercache:loader', () => {
  it('traces each loader call with the cache, the family and the key, its result or its error', async () => {
    const seen = record<LoaderTraceContext>(loaderChannel, LOADER_CHANNEL)
    const cache = cacheFor({ name: 'orders' })
    expect(await cache.getOrSet('k1', async () => 'v1')).toBe('v1')
    expect(await cache.getOrSet('k1', async () => 'never')).toBe('v1') // an L1 hit: no loader call
    await expect(cache.getOrSet('k2', async () => Promise.reject(new Error('db down')))).rejects.toThrow()

    const starts = seen.filter(([event]) => event === 'start').map(([, c]) => c)
    expect(starts.map((c) => [c.cache, c.family, c.key, c.keys])).toEqual([
      ['orders', 'default@1', 'k1', 1],
      ['orders', 'default@1', 'k2', 1],
    ])
    const ends = seen.filter(([event]) => event === 'asyncEnd').map(([, c]) => c)
    expect(ends).toHaveLength(2)
    expect(ends[0]!.result).toBe('v1')
    expect((ends[1]!.error as Error).message).toBe('db down')
    expect(seen.filter(([event]) => event === 'error')).toHaveLength(1)
    // The same context object from start to end: a subscriber keeps its timer or span on it.
    expect(ends[0]).toBe(starts[0])
  })

  it('traces a batch loader once, with its size', async () => {
    const seen = record<LoaderTraceContext>(loaderChannel, LOADER_CHANNEL)
    const cache = cacheFor()
    await cache.getOrSetMany(['a', 'b', 'c'], async (keys) => keys.map((k) => k.toUpperCase()))
    const starts = seen.filter(([event]) => event === 'start').map(([, c]) => c)
    expect(starts.map((c) => [c.key, c.keys])).toEqual([['a', 3]])
  })

  it('publishes nothing once nobody listens', async () => {
    const seen: unknown[] = []
    const listener = (message: unknown) => seen.push(message)
    subscribe(`tracing:${LOADER_CHANNEL}:start`, listener)
    const cache = cacheFor()
    await cache.getOrSet('k1', async () => 1)
    unsubscribe(`tracing:${LOADER_CHANNEL}:start`, listener)
    await cache.getOrSet('k2', async () => 2)
    expect(seen).toHaveLength(1)
    expect(loaderChannel.start.hasSubscribers).toBe(false)
  })
})

describe('tiercache:l2', () => {
  it('traces each call through the L2 guard by operation, failures with their error', async () => {
    const seen = record<L2TraceContext>(l2Channel, L2_CHANNEL)
    const faulty = chaos(memoryStore())
    const cache = cacheFor({ name: 'orders', l2: faulty.store })
    await cache.set('k1', 'v1')
    await cache.get('k1')
    faulty.fail('get', 'error')
    const other = cacheFor({ name: 'orders', l2: faulty.store })
    expect(await other.getOrSet('k1', async () => 'from the loader')).toBe('from the loader')

    const operations = seen.filter(([event]) => event === 'start').map(([, c]) => `${c.cache}:${c.operation}`)
    expect(operations).toContain('orders:get')
    expect(operations.some((op) => op !== 'orders:get')).toBe(true) // the write's own operation
    const failed = seen.filter(([event]) => event === 'error').map(([, c]) => c.operation)
    expect(failed).toContain('get')
    expect(other.stats().l2ErrorsByOperation.get).toBeGreaterThanOrEqual(1)
    expect(other.stats().total.l2Errors).toBe(Object.values(other.stats().l2ErrorsByOperation).reduce((n, v) => n + v, 0))
  })
})

describe('bus message counts', () => {
  it('counts the messages a process sent and the ones it applied', async () => {
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const busA = memoryBus({ network, instanceId: 'a' })
    const busB = memoryBus({ network, instanceId: 'b' })
    const a = cacheFor({ l2: memoryStore({ backend, namespace: 'n' }), bus: busA })
    const b = cacheFor({ l2: memoryStore({ backend, namespace: 'n' }), bus: busB })
    while (!busA.healthy || !busB.healthy) await new Promise((resolve) => setImmediate(resolve))
    await a.set('k', 1)
    await a.delete('k')
    await expect.poll(() => b.stats().busMessagesApplied).toBeGreaterThanOrEqual(1)
    expect(a.stats().busMessagesSent).toBeGreaterThanOrEqual(1)
    expect(b.stats().busMessagesSent).toBe(0)
    expect(a.stats().busMessagesApplied).toBe(0)
  })
})
