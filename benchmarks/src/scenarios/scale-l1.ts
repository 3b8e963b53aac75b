// The in-process rows of `scale`, each library in a child of its own (with --expose-gc): L1 hits
// over 1,000 to 1,000,000 resident entries (tiercache getOrSet against lru-cache get in an async
// function, the physical limit at that size), the heap each entry takes, and a generational
// family's invalidate() with that many entries resident. The keys, the values and the Zipf draw
// sequence are built before the heap baseline is taken and outside every timed part.
import { createTieredCache } from '@tiercache/core'
import { LRUCache } from 'lru-cache'
import { measure } from '../measure.js'
import { L1_BATCH } from '../peers/common.js'
import type { ChildContext, JsonObject, Row } from '../scenario.js'
import { zipfSequence } from '../zipf.js'

export interface L1SizesArgs {
  sizes: readonly number[]
  /** Measuring rounds per size; the row takes their median. */
  rounds: number
  /** Measuring time per size, split over the rounds (default: the run's time per task). */
  timeMs?: number
}

export interface InvalidateArgs {
  sizes: readonly number[]
  calls: number
}

/** Entries of the throwaway store each size fills first. */
const WARM_ENTRIES = 1_000

/**
 * Entries the heap figure is taken over, at the least: a size below it fills that many stores of
 * its size. V8's own heap (code, type feedback) moves by ~100 KB between samples, which over one
 * store of 1,000 entries would be ~100 B per entry either way; over 100 stores it is 1 B.
 */
const HEAP_ENTRIES = 100_000

/** Stores of `size` the heap figure is taken over. */
const heapStores = (size: number): number => Math.ceil(HEAP_ENTRIES / size)

/** Draws per sequence: a power of two, indexed with a mask. */
const DRAWS = 1 << 16

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error('scale: the child needs --expose-gc')
  collect()
  collect()
}

const heapUsed = (): number => {
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * `count` keys and distinct task-status values, each parsed from its own JSON as a value read
 * from Redis or a database driver is: no object or string of one is shared with another. (Not
 * built by object spread: V8 gives an object cloned by spread a costlier frozen form, ~240 B
 * more per object once `immutability: 'freeze'` freezes it; see docs/scaling.md.)
 */
function taskStatuses(base: JsonObject, count: number): { keys: string[]; values: JsonObject[] } {
  const keys = new Array<string>(count)
  const values = new Array<JsonObject>(count)
  const hosts = (base.hosts ?? {}) as JsonObject
  for (let i = 0; i < count; i++) {
    const taskId = `task-${String(i + 1).padStart(7, '0')}`
    keys[i] = taskId
    values[i] = JSON.parse(JSON.stringify({ ...base, taskId, progress: (i % 100) / 100, hosts: { ...hosts, running: i % 20 } })) as JsonObject
  }
  return { keys, values }
}

interface Resident {
  /** One lookup that must hit, by key. */
  get(key: string): Promise<unknown>
  /** Closes it, checking that every read was a hit. */
  close(): Promise<void>
  /** Closes one that was filled for the heap figure only. */
  drop(): Promise<void>
}

/**
 * Fills a store with `size` entries and measures Zipf reads over them, `rounds` times. The heap
 * per entry is over `HEAP_ENTRIES` at the least: below that, it fills more stores of `size`
 * (each with entries of its own, its per-store cost included) and reads from the first.
 */
async function measureSize(ctx: ChildContext, size: number, { rounds, timeMs = ctx.timeMs }: L1SizesArgs, fill: (keys: string[], values: JsonObject[]) => Promise<Resident>) {
  const draws = zipfSequence(size, DRAWS, 1, 7)
  // A throwaway store first: the code a store runs (bytecode, type feedback) lives on the heap too,
  // made once per process, and would weigh on the smallest size as if its entries cost it.
  const warm = taskStatuses(ctx.fixtures.taskStatus, WARM_ENTRIES)
  const warmStore = await fill(warm.keys, warm.values)
  for (const key of warm.keys) await warmStore.get(key)
  await warmStore.close()
  const stores = heapStores(size)
  const before = heapUsed()
  // The values count: an entry's heap is its key, its value and what the store keeps beside them.
  const sets = Array.from({ length: stores }, () => taskStatuses(ctx.fixtures.taskStatus, size))
  const filled: Resident[] = []
  for (const set of sets) filled.push(await fill(set.keys, set.values))
  const heapBytesPerEntry = (heapUsed() - before) / (size * stores)
  const resident = filled[0]!
  for (const extra of filled.slice(1)) await extra.drop()
  // Only the store keeps the values from here on; the reads take their keys from `keys`.
  let { keys } = sets[0]!
  sets.length = 0
  const mask = DRAWS - 1
  let next = 0
  const readKeys = keys
  const samples: number[] = []
  try {
    for (const key of [readKeys[0]!, readKeys[size - 1]!]) {
      if ((await resident.get(key)) === undefined) throw new Error(`scale: ${key} is not resident; the row would measure misses`)
    }
    for (let round = 0; round < rounds; round++) {
      const { opsPerSec } = await measure(
        async () => {
          for (let i = 0; i < L1_BATCH; i++) await resident.get(readKeys[draws[next++ & mask]!]!)
        },
        { timeMs: timeMs / rounds, opsPerCall: L1_BATCH },
      )
      samples.push(opsPerSec)
    }
  } finally {
    await resident.close()
    keys = []
  }
  samples.sort((a, b) => a - b)
  return { opsPerSec: samples[samples.length >> 1]!, heapBytesPerEntry }
}

const note = (rounds: number, entries: number) => {
  const stores = heapStores(entries)
  return `Zipf (s = 1) reads over the resident keys${rounds > 1 ? `, median of ${rounds} rounds` : ''}${stores > 1 ? `; heap over ${stores} stores of ${entries.toLocaleString('en-US')}` : ''}`
}

/** tiercache `getOrSet` hits (L1 only: no L2 is configured, so nothing else is timed). */
export async function tiercacheEntries(args: L1SizesArgs, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const entries of args.sizes) {
    const figures = await measureSize(ctx, entries, args, async (keys, values) => {
      const cache = createTieredCache({ ttl: '1h', l1: { maxEntries: entries } })
      for (let i = 0; i < keys.length; i++) await cache.set(keys[i]!, values[i])
      const loader = (): never => {
        throw new Error('scale: a resident key was loaded')
      }
      return {
        get: (key) => cache.getOrSet(key, loader),
        async close() {
          const { loaderCalls, l1Hits } = cache.stats().total
          await cache.close()
          if (loaderCalls !== 0 || l1Hits === 0) throw new Error(`scale: expected L1 hits only (l1Hits ${l1Hits}, loaderCalls ${loaderCalls})`)
        },
        drop: () => cache.close(),
      }
    })
    rows.push({ name: 'tiercache', variant: 'getOrSet hit', group: 'l1-entries', ratioKey: `l1-entries ${entries}`, entries, ...figures, note: note(args.rounds, entries) })
  }
  return rows
}

/** lru-cache `get` inside an async function: what an awaited L1 hit costs at the least. */
export async function lruCacheEntries(args: L1SizesArgs, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const entries of args.sizes) {
    const figures = await measureSize(ctx, entries, args, async (keys, values) => {
      const lru = new LRUCache<string, JsonObject>({ max: entries })
      for (let i = 0; i < keys.length; i++) lru.set(keys[i]!, values[i]!)
      return {
        get: async (key) => lru.get(key),
        async close() {
          lru.clear()
        },
        async drop() {
          lru.clear()
        },
      }
    })
    rows.push({ name: 'lru-cache', variant: 'get in an async function', group: 'l1-entries', ratioKey: `l1-entries ${entries}`, baseline: true, entries, ...figures, note: note(args.rounds, entries) })
  }
  return rows
}

/**
 * `family.invalidate()` of a generational family holding `size` entries in L1 (L1 only: the
 * figure is the engine's own cost, which a Redis round trip would hide). The entries stay
 * resident: an invalidation bumps the generation, and old entries are never read again.
 */
export async function tiercacheInvalidate(args: InvalidateArgs, ctx: ChildContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const residentEntries of args.sizes) {
    const cache = createTieredCache({ ttl: '1h', l1: { maxEntries: residentEntries + 1_000 } })
    try {
      const family = cache.family<string, JsonObject>({ name: 'task:status', key: (id) => id, generational: true })
      const { keys, values } = taskStatuses(ctx.fixtures.taskStatus, residentEntries)
      for (let i = 0; i < keys.length; i++) await family.set(keys[i]!, values[i]!)
      if (family.peek(keys[residentEntries - 1]!) === undefined) throw new Error('scale: the family lost entries while filling')
      gc()
      const samples: number[] = []
      for (let i = 0; i < args.calls; i++) {
        const start = process.hrtime.bigint()
        await family.invalidate()
        samples.push(Number(process.hrtime.bigint() - start) / 1_000)
      }
      if (family.peek(keys[0]!) !== undefined) throw new Error('scale: invalidate() left the family readable')
      samples.sort((a, b) => a - b)
      rows.push({
        name: 'tiercache',
        variant: 'family invalidate()',
        group: 'invalidate',
        residentEntries,
        p50Us: samples[samples.length >> 1]!,
        note: `${args.calls} calls, L1 only`,
      })
    } finally {
      await cache.close()
    }
  }
  return rows
}
