// Writers are never held by a sick L2 or bus: a write's remote work (its L2 changes and its bus
// message) is bounded by the guard, and what could not go out is kept and sent once it can.
import { describe, expect, it } from 'vitest'
import { memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type CacheEvents, type InvalidationBus, type TieredCache } from '../src/index.js'
import { cacheFor, chaos, nextEvent } from './helpers.js'

/** A bus whose `publish` can be made to hang, as on a paused Redis, counting its calls. */
function hangable(bus: InvalidationBus) {
  let hanging = false
  let publishes = 0
  const hung: (() => void)[] = []
  const wrapped = new Proxy(bus, {
    get(target, property, receiver) {
      if (property === 'publish') {
        return (message: Parameters<InvalidationBus['publish']>[0]) => {
          publishes++
          return hanging ? new Promise<void>((resolve) => hung.push(resolve)) : target.publish(message)
        }
      }
      const value = Reflect.get(target, property, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  return {
    bus: wrapped,
    get publishes() {
      return publishes
    },
    hang(on: boolean) {
      hanging = on
      // Hung calls never reach the transport: they end without delivering anything.
      if (!on) for (const release of hung.splice(0)) release()
    },
  }
}

const applied = (cache: TieredCache, key: string) =>
  nextEvent<CacheEvents['bus:applied']>((l) => cache.on('bus:applied', l), (e) => e.keys.includes(key))

async function twoNodes(options: { volumeThreshold?: number } = {}) {
  const backend = memoryBackend()
  const network = memoryBusNetwork()
  const sick = chaos(memoryStore({ backend, namespace: 'w' }))
  const writerBus = hangable(memoryBus({ network, instanceId: 'writer' }))
  const readerBus = memoryBus({ network, instanceId: 'reader' })
  const breaker = { volumeThreshold: options.volumeThreshold ?? 5, resetTimeout: '50ms' }
  const writer = cacheFor({ l2: sick.store, bus: writerBus.bus, l2Timeout: '50ms', breaker })
  const reader = cacheFor({ l2: memoryStore({ backend, namespace: 'w' }), bus: readerBus, l2Timeout: '1s' })
  while (!writerBus.bus.healthy || !readerBus.healthy) await new Promise((resolve) => setImmediate(resolve))
  return { writer, reader, sick, writerBus }
}

describe('writes against a sick L2 and bus', () => {
  it('resolve at the guard\'s bound while both hang; the held message and the queued delete go out once they are back', async () => {
    const { writer, reader, sick, writerBus } = await twoNodes()
    await writer.set('k', 'v1')
    expect(await reader.get('k')).toBe('v1')

    sick.fail('*', 'hang')
    writerBus.hang(true)
    let resolved = false
    await writer.set('k', 'v2').then(() => (resolved = true))
    // It resolved while L2 and the bus still hang.
    expect(resolved).toBe(true)
    expect(writerBus.publishes).toBeGreaterThanOrEqual(1)
    expect(writer.peek('k')).toBe('v2')
    expect(reader.peek('k')).toBe('v1') // the message did not get through
    expect(writer.stats().recoveryQueueDepth).toBe(1)

    sick.heal()
    sick.releaseHung()
    writerBus.hang(false)
    const delivered = applied(reader, 'k')
    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => writer.on('recovery-replayed', l))
    await writer.set('other', 1) // goes through: the held message and the queued delete follow
    await delivered
    await replayed
    expect(reader.peek('k')).toBeUndefined()
    expect(await reader.getOrSet('k', () => 'v2 from the database')).toBe('v2 from the database')
    expect(writer.stats().recoveryQueueDepth).toBe(0)
  })

  it('with the breaker open, do not try the bus: the message is held and sent once the breaker closes', async () => {
    const { writer, reader, sick, writerBus } = await twoNodes({ volumeThreshold: 2 })
    await writer.set('k', 'v1')
    expect(await reader.get('k')).toBe('v1')
    sick.fail('*', 'error')
    const opened = nextEvent<CacheEvents['breaker']>((l) => writer.on('breaker', l), (e) => e.state === 'open')
    for (let i = 0; i < 10 && writer.stats().breaker.state === 'closed'; i++) await writer.get(`miss-${i}`)
    await opened

    const before = writerBus.publishes
    await writer.set('k', 'v2')
    expect(writerBus.publishes).toBe(before) // held, not tried
    expect(reader.peek('k')).toBe('v1')

    sick.heal()
    const delivered = applied(reader, 'k')
    const closed = nextEvent<CacheEvents['breaker']>((l) => writer.on('breaker', l), (e) => e.state === 'closed')
    await new Promise((resolve) => setTimeout(resolve, 60)) // past the breaker's resetTimeout: the next call probes
    await writer.get('probe')
    await closed
    await delivered
    expect(reader.peek('k')).toBeUndefined()
  })

  it('a message held while the breaker was open goes out only after the delete L2 missed was replayed', async () => {
    const backend = memoryBackend()
    const network = memoryBusNetwork()
    const plain = memoryStore({ backend, namespace: 'held' })
    const flaky = chaos(memoryStore({ backend, namespace: 'held' }))
    const writerBus = memoryBus({ network, instanceId: 'writer' })
    const readerBus = memoryBus({ network, instanceId: 'reader' })
    const writer = cacheFor({ l2: flaky.store, bus: writerBus, l2Timeout: '1s', breaker: { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: 50 } })
    const reader = cacheFor({ l2: memoryStore({ backend, namespace: 'held' }), bus: readerBus })
    while (!writerBus.healthy || !readerBus.healthy) await new Promise((resolve) => setImmediate(resolve))
    await writer.set('k', 'old')
    expect(await reader.get('k')).toBe('old') // in the reader's L1 now

    flaky.fail('set', 'error')
    await writer.set('k', 'new') // L2 keeps 'old', the breaker opens: the key's delete is queued, the message held
    expect(writer.stats().breaker.state).toBe('open')
    flaky.heal()

    // When the message reaches the reader, L2 must no longer hold the value it replaced.
    const l2AtDelivery = new Promise<unknown>((resolve) => reader.on('bus:applied', ({ keys }) => keys.length > 0 && resolve(plain.raw({ family: 'default@1', generation: '', id: 'k' })?.value)))
    expect(await l2AtDelivery).toBeUndefined()
    expect(await reader.get('k')).toBeUndefined()
  })
})
