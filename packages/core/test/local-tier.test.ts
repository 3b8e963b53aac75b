import { describe, expect, it } from 'vitest'
import { BASE_UNIT, LocalTier, NEVER, type L1Entry } from '../src/l1/local-tier.js'
import { memoryStore } from '../src/index.js'
import { TagTable } from '../src/tags/tag-table.js'
import { cacheFor, fakeClock } from './helpers.js'

const DAY = 86_400_000

function tierAt(start: number) {
  const clock = fakeClock(start)
  const local = new LocalTier({ maxEntries: 100, maxBytes: undefined, sizeOf: () => 1 }, clock, new TagTable(undefined, clock, 100))
  return { clock, local }
}

const times = (entry: L1Entry) => [entry.base, entry.filled, entry.fresh, entry.grace, entry.more!.expires, entry.more!.refresh]
/** What V8 keeps in the object itself on 64-bit: a 31-bit or 32-bit signed integer. */
const small = (n: number) => Number.isInteger(n) && n >= -NEVER && n <= NEVER

describe('LocalTier: entry times', () => {
  it('keeps every time as a small integer, on a wall clock, with fractional eager refresh points and grace', () => {
    const now = 1_764_806_400_123
    const { local } = tierAt(now)
    local.fill('k', 'v', now, now + 3_600_000, now + 3_900_000, undefined, undefined, 0, now + 0.8 * 3_600_000 + 0.4)
    const entry = local.peek('k')!
    expect(times(entry).every(small)).toBe(true)
    expect(local.expiresAt(entry)).toBe(now + 3_600_000)
    expect(local.graceUntil(entry)).toBe(now + 3_900_000)
    expect(entry.base * BASE_UNIT + entry.filled).toBe(now)
  })

  it('rounds fractional times up, so a time is reached at the same whole millisecond as before', () => {
    const { clock, local } = tierAt(1_000)
    local.fill('k', 'v', 1_000, 1_010.5, 1_020.25, undefined)
    const entry = local.peek('k')!
    clock.set(1_010)
    expect(local.fresh(entry)).toBe(true)
    clock.set(1_011)
    expect(local.fresh(entry)).toBe(false)
    expect(local.spent(entry)).toBe(false)
    clock.set(1_021)
    expect(local.spent(entry)).toBe(true)
  })

  it('keeps an untagged entry without eager refresh or l1Ttl to 7 fields, with no record for rare parts', () => {
    const { local } = tierAt(1_000)
    local.fill('plain', 'v', 1_000, 61_000, 61_000, undefined)
    const plain = local.peek('plain')!
    expect(Object.keys(plain)).toEqual(['value', 'promise', 'base', 'filled', 'fresh', 'grace', 'more'])
    expect(plain.more).toBeUndefined()
    expect(local.expiresAt(plain)).toBe(61_000)
    expect(local.exact(plain)).toBe(true)
    expect(local.tagsOf(plain)).toBeUndefined()
    expect(local.tagVersionOf(plain)).toBe(0)

    // Each rare part alone brings the record: an l1Ttl below the TTL, eager refresh, tags, a fill that came expired.
    local.fill('capped', 'v', 1_000, 61_000, 61_000, 10_000)
    local.fill('eager', 'v', 1_000, 61_000, 61_000, undefined, undefined, 0, 49_000)
    local.fill('tagged', 'v', 1_000, 61_000, 61_000, undefined, ['a'], 3)
    local.fill('expired', 'v', 1_000, 61_000, 61_000, undefined, undefined, 0, Infinity, true)
    const capped = local.peek('capped')!
    expect(local.expiresAt(capped)).toBe(61_000)
    expect(capped.base * BASE_UNIT + capped.fresh).toBe(11_000)
    expect(local.peek('eager')!.more).toBeDefined()
    expect(local.tagsOf(local.peek('tagged')!)).toEqual(['a'])
    expect(local.tagVersionOf(local.peek('tagged')!)).toBe(3)
    expect(local.expired(local.peek('expired')!)).toBe(true)
  })

  it('keeps the own expiry of an entry without the record when expire() brings fresh down', () => {
    const { clock, local } = tierAt(1_000)
    local.fill('k', 'v', 1_000, 61_000, 91_000, undefined)
    clock.set(2_000)
    expect(local.expire('k')).toBe(true)
    const entry = local.peek('k')!
    expect(local.fresh(entry)).toBe(false)
    expect(local.expired(entry)).toBe(true)
    expect(local.expiresAt(entry)).toBe(61_000)
    expect(local.graceUntil(entry)).toBe(91_000)
    expect(local.staleOf('k', entry)).toBe(entry)
    expect(local.takeRefresh(entry)).toBe(false)
  })

  it('tells an entry whose times were past 2^31 ms from an exact one', () => {
    const { local } = tierAt(0)
    local.fill('long', 'v', 0, 30 * DAY, 30 * DAY, undefined)
    local.fill('long-grace', 'v', 0, DAY, 30 * DAY, undefined)
    local.fill('capped', 'v', 0, 30 * DAY, 30 * DAY, 60_000)
    expect(local.exact(local.peek('long')!)).toBe(false)
    expect(local.exact(local.peek('long-grace')!)).toBe(false)
    // Its fresh time is short, its own expiry is not.
    expect(local.exact(local.peek('capped')!)).toBe(false)
  })

  it('makes the settled promise on the first hit, not at fill, and hands the same one out after', async () => {
    const cache = cacheFor({ jitter: 0 })
    await cache.set('k', { n: 1 })
    // A fill costs no promise: a million entries never read cost none.
    const { local } = tierAt(0)
    local.fill('k', 'v', 0, 1_000, 1_000, undefined)
    expect(local.peek('k')!.promise).toBeUndefined()
    const first = cache.getOrSet('k', () => ({ n: 2 }))
    expect(cache.get('k')).toBe(first)
    expect(cache.getOrSet('k', () => ({ n: 3 }))).toBe(first)
    expect(await first).toEqual({ n: 1 })
  })

  it('takes an eager refresh once, and an expired entry has none to take', () => {
    const { clock, local } = tierAt(5_000)
    local.fill('k', 'v', 5_000, 6_000, 6_000, undefined, undefined, 0, 5_800)
    const entry = local.peek('k')!
    clock.set(5_500)
    expect(local.settled(entry)).toBe(true)
    clock.set(5_800)
    expect(local.settled(entry)).toBe(false)
    expect(local.fresh(entry)).toBe(true)
    expect(local.takeRefresh(entry)).toBe(true)
    expect(local.takeRefresh(entry)).toBe(false)
    expect(local.settled(entry)).toBe(true)

    local.fill('e', 'v', 5_800, 6_000, 7_000, undefined, undefined, 0, 5_900)
    expect(local.expire('e')).toBe(true)
    const expired = local.peek('e')!
    expect(local.expired(expired)).toBe(true)
    expect(local.fresh(expired)).toBe(false)
    expect(local.takeRefresh(expired)).toBe(false)
    expect(local.staleOf('e', expired)).toBe(expired)
    expect(local.expired(local.peek('k')!)).toBe(false)
  })

  it('works on a clock at zero, before it, and far past 2^31 units of the base', () => {
    for (const start of [0, -5 * DAY, 2 ** 52]) {
      const { clock, local } = tierAt(start)
      local.fill('k', 'v', start, start + 60_000, start + 90_000, undefined)
      const entry = local.peek('k')!
      expect(local.expiresAt(entry), String(start)).toBe(start + 60_000)
      clock.set(start + 59_999)
      expect(local.fresh(entry), String(start)).toBe(true)
      clock.set(start + 60_000)
      expect(local.fresh(entry), String(start)).toBe(false)
      expect(local.staleOf('k', entry), String(start)).toBe(entry)
    }
  })
})

describe('LocalTier: an L1 copy lives at most 2^31 ms', () => {
  it('counts a TTL past 24.8 days as reached at 2^31 ms: L1 alone reloads then, and an L1 copy is never served longer', async () => {
    const clock = fakeClock()
    const cache = cacheFor({ clock, ttl: '30d', jitter: 0 })
    let calls = 0
    const loader = () => ++calls
    expect(await cache.getOrSet('k', loader)).toBe(1)
    clock.advance(24 * DAY)
    expect(cache.peek('k')).toBe(1)
    clock.advance(NEVER - 24 * DAY)
    expect(cache.peek('k')).toBeUndefined()
    expect(await cache.getOrSet('k', loader)).toBe(2)
  })

  it('leaves L2 its exact time: past 2^31 ms the read goes to L2, which still holds the value for its whole TTL', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const cache = cacheFor({ clock, ttl: '30d', jitter: 0, l2: store })
    let calls = 0
    const loader = () => ++calls
    expect(await cache.getOrSet('k', loader)).toBe(1)
    expect(store.raw({ family: 'default@1', generation: '', id: 'k' })!.expiresAt).toBe(clock.now() + 30 * DAY)
    clock.advance(25 * DAY)
    expect(await cache.getOrSet('k', loader)).toBe(1)
    expect(calls).toBe(1)
    expect(cache.stats().total.l2Hits).toBe(1)
    clock.advance(5 * DAY)
    expect(await cache.getOrSet('k', loader)).toBe(2)
  })
})
