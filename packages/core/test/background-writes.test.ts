// Background writes: they resolve once L1 changed and their remote work is queued. The queue
// keeps the order of a key's writes, the writer reads its own writes meanwhile, close() runs it
// out, and past its bound it falls back to one namespace bump.
import { describe, expect, it } from 'vitest'
import { InvalidOptionsError, memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type CacheEvents, type TieredCache } from '../src/index.js'
import { cacheFor, chaos, nextEvent } from './helpers.js'

const raw = (store: ReturnType<typeof memoryStore>, id: string) => store.raw({ family: 'default@1', generation: '', id })?.value

/** Resolves once the cache's queue of background writes has run out. */
async function drained(cache: TieredCache): Promise<void> {
  while (cache.stats().writeQueueDepth > 0) await new Promise((resolve) => setTimeout(resolve, 5))
}

async function nodes(options: { backgroundWrites?: boolean; maxSize?: number } = {}) {
  const backend = memoryBackend()
  const network = memoryBusNetwork()
  const plain = memoryStore({ backend, namespace: 'bg' })
  const slow = chaos(memoryStore({ backend, namespace: 'bg' }))
  const writerBus = memoryBus({ network, instanceId: 'writer' })
  const readerBus = memoryBus({ network, instanceId: 'reader' })
  const writer = cacheFor({
    l2: slow.store,
    bus: writerBus,
    l2Timeout: '1s',
    ...(options.backgroundWrites === undefined ? {} : { backgroundWrites: options.backgroundWrites }),
    ...(options.maxSize === undefined ? {} : { writeQueue: { maxSize: options.maxSize } }),
  })
  const reader = cacheFor({ l2: memoryStore({ backend, namespace: 'bg' }), bus: readerBus, l2Timeout: '1s' })
  while (!writerBus.healthy || !readerBus.healthy) await new Promise((resolve) => setImmediate(resolve))
  return { writer, reader, plain, slow }
}

describe('background writes', () => {
  it('resolve before L2 changed; the writer reads its own writes; the others see them once the queue ran', async () => {
    const { writer, reader, plain, slow } = await nodes()
    await writer.set('k', 'v1')
    expect(await reader.get('k')).toBe('v1')

    slow.fail('set', 'hang') // L2 takes no set until released
    await writer.set('k', 'v2', { background: true })
    expect(raw(plain, 'k')).toBe('v1') // resolved while L2 still holds the old value
    expect(writer.stats().writeQueueDepth).toBe(1) // the set runs (and waits in L2)
    expect(await writer.get('k')).toBe('v2')

    // A delete queued behind it: the writer does not read the old copy from L2 meanwhile.
    await writer.delete('k', { background: true })
    expect(await writer.get('k')).toBeUndefined()
    expect(await writer.getOrSet('k', () => 'from the database')).toBe('from the database')

    const applied = nextEvent<CacheEvents['bus:applied']>((l) => reader.on('bus:applied', l), (e) => e.keys.includes('k'))
    slow.heal()
    slow.releaseHung()
    await drained(writer)
    await applied
    expect(raw(plain, 'k')).toBeUndefined()
    expect(await reader.get('k')).toBeUndefined()
  })

  it('keep the order of a key\'s writes, and close() runs the queue out', async () => {
    const { writer, plain, slow } = await nodes({ backgroundWrites: true })
    slow.fail('set', { delayMs: 5 })
    for (let i = 1; i <= 20; i++) await writer.set('k', i)
    await writer.set('other', 'last')
    expect(await writer.get('k')).toBe(20)
    await writer.close()
    expect(raw(plain, 'k')).toBe(20)
    expect(raw(plain, 'other')).toBe('last')
  })

  it('an awaited write made while background work is queued waits its turn: L2 ends with the newer value', async () => {
    const { writer, plain, slow } = await nodes()
    slow.fail('set', { delayMs: 100 }) // the queued write is slow to land...
    const before = slow.calls.set ?? 0
    await writer.set('k', 'older', { background: true })
    while ((slow.calls.set ?? 0) === before) await new Promise((resolve) => setImmediate(resolve))
    slow.fail('set', { delayMs: 5 }) // ...and a write after it would be quick
    await writer.set('k', 'newer') // awaited: after the queued one, not before it
    expect(raw(plain, 'k')).toBe('newer')
    await drained(writer)
    expect(raw(plain, 'k')).toBe('newer')
  })

  it('an awaited write of another key does not wait for the queue', async () => {
    const { writer, slow } = await nodes()
    slow.fail('set', 'hang')
    const before = slow.calls.set ?? 0
    await writer.set('slow', 1, { background: true })
    while ((slow.calls.set ?? 0) === before) await new Promise((resolve) => setImmediate(resolve))
    slow.fail('set', { delayMs: 1 })
    let done = false
    await writer.set('other', 2).then(() => (done = true))
    expect(done).toBe(true)
    expect(writer.stats().writeQueueDepth).toBe(1) // the first is still hanging
    slow.heal()
    slow.releaseHung()
  })

  it('a queued write lands in the generation it was made in: a bump queued after it, or made elsewhere, leaves it behind', async () => {
    const { writer, reader, slow } = await nodes()
    const pages = (cache: TieredCache) => cache.family<string, string>({ name: 'pages', key: (id) => id, generational: true })
    const mine = pages(writer)
    const theirs = pages(reader)
    await mine.set('p', 'before')
    expect(await theirs.get('p')).toBe('before')
    slow.fail('set', { delayMs: 30 })
    await mine.set('p', 'written before the bump', { background: true })
    await mine.invalidate({ background: true })
    await drained(writer)
    // No fallback to a namespace bump: the set had its key, the bump its own step.
    expect(writer.stats().recoveryQueueDepth).toBe(0)
    expect(await theirs.getOrSet('p', () => 'reloaded')).toBe('reloaded')

    // Another process bumps while this one's write waits in the queue (behind a hung one).
    slow.fail('set', 'hang')
    await mine.set('blocker', 'x', { background: true })
    await mine.set('q', 'old data', { background: true })
    const heard = nextEvent<CacheEvents['bus:applied']>((l) => writer.on('bus:applied', l), (e) => e.op === 'generation')
    await theirs.invalidate()
    await heard
    slow.heal()
    slow.releaseHung()
    await drained(writer)
    expect(await theirs.getOrSet('q', () => 'fresh')).toBe('fresh')
  })

  it('past the queue bound, drop the queued work for one namespace bump; the writer reads from the loader until it lands', async () => {
    const { writer, reader, slow } = await nodes({ maxSize: 2 })
    await writer.set('a', 'old a')
    await writer.set('b', 'old b')
    expect(await reader.get('a')).toBe('old a')
    slow.fail('delete', 'hang')
    slow.fail('bumpGeneration', 'error') // the namespace bump cannot land yet
    // One runs (and hangs), two wait, the next ones overflow the bound.
    for (const key of ['a', 'b', 'c', 'd', 'e']) await writer.delete(key, { background: true })
    expect(await writer.getOrSet('a', () => 'a from the database')).toBe('a from the database')
    expect(await writer.get('b')).toBeUndefined() // not the old copy in L2

    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => writer.on('recovery-replayed', l))
    const flushed = nextEvent<CacheEvents['l1-flushed']>((l) => reader.on('l1-flushed', l), (e) => e.reason === 'namespace-generation')
    slow.heal()
    await writer.set('z', 1) // a call that goes through: the queued bump follows
    expect(await replayed).toMatchObject({ generationBumped: true })
    // The other process hears the new namespace generation: the old values are out of reach.
    await flushed
    expect(await reader.getOrSet('a', () => 'a reloaded')).toBe('a reloaded')
    expect(await writer.get('b')).toBeUndefined()
    slow.releaseHung()
  })

  it('refuse a bad background option, naming it', async () => {
    const { writer } = await nodes()
    await expect(writer.set('k', 1, { background: 'yes' as never })).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(writer.delete('k', { background: 1 as never })).rejects.toThrow(/options\.background/)
    await expect(writer.set('k', 1, { ttl: '1m', background: true })).resolves.toBeUndefined()
  })
})
