import { expect, it } from 'vitest'
import { type TieredCache, memoryBus, memoryBusNetwork, memoryStore } from '../src/index.js'
import { cacheFor } from './helpers.js'

/** A small deterministic PRNG (mulberry32) so a failure replays with its seed. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

it.each([1, 2, 3, 4, 5])('random writes, reads, held messages and bus outages converge (seed %i)', async (seed) => {
  const next = random(seed)
  const store = memoryStore()
  const network = memoryBusNetwork()
  const buses = Array.from({ length: 3 }, (_, i) => memoryBus({ network, instanceId: `n${i}` }))
  const caches: TieredCache[] = buses.map((bus) => cacheFor({ l2: store, bus, lease: { pollInterval: 1, waitTimeout: 20 } }))
  while (!buses.every((b) => b.healthy)) await settle()
  const keys = Array.from({ length: 6 }, (_, i) => `k${i}`)
  const database = new Map<string, number>()
  let version = 0
  for (let step = 0; step < 300; step++) {
    const node = Math.floor(next() * caches.length)
    const cache = caches[node] as TieredCache
    const key = keys[Math.floor(next() * keys.length)] as string
    const roll = next()
    if (roll < 0.3) {
      const value = ++version
      database.set(key, value)
      await cache.set(key, value)
    } else if (roll < 0.4) {
      database.delete(key)
      await cache.delete(key)
    } else if (roll < 0.8) {
      await cache.getOrSet(key, () => database.get(key) ?? null)
    } else if (roll < 0.85) {
      network.hold()
    } else if (roll < 0.9) {
      network.release()
    } else if (roll < 0.95) {
      buses[node]?.setHealthy(false)
    } else {
      buses[node]?.setHealthy(true)
    }
  }
  network.release()
  for (const bus of buses) bus.setHealthy(true)
  await settle()
  for (const [i, cache] of caches.entries()) {
    for (const key of keys) {
      const expected = database.get(key) ?? null
      const got = await cache.getOrSet(key, () => database.get(key) ?? null)
      expect(got, `node ${i} key ${key}`).toBe(expected)
    }
  }
})
