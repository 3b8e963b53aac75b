import { describe, expect, it, onTestFinished } from 'vitest'
import { L2Guard } from '../src/l2/guard.js'
import { memoryStore, type RemoteStore, type TagVersions } from '../src/index.js'
import { TAGS_INVALID, TAGS_OK, TAGS_UNKNOWN, TagTable } from '../src/tags/tag-table.js'
import { chaos, deferred, fakeClock } from './helpers.js'

/** A real guard over `store` (shut down when the test finishes). */
function guardOf(store: RemoteStore): L2Guard {
  const guard = new L2Guard(
    store,
    { name: 'test', timeout: 10_000, volumeThreshold: 100, errorThresholdPercentage: 50, resetTimeout: 1_000, rollingCountTimeout: 10_000 },
    { onError: () => {}, onStateChange: () => {} },
  )
  onTestFinished(() => guard.shutdown())
  return guard
}

/** Moves the store's versions, as another process's invalidation would. */
async function invalidate(store: RemoteStore, tags: readonly string[]): Promise<number> {
  if (store.invalidateTags === undefined) throw new Error('the store cannot invalidate tags')
  return store.invalidateTags(tags)
}

/** A table over a memory store, with the store (to move versions as another process would) and its call counts. */
function withStore(maxSize = 10_000) {
  const clock = fakeClock()
  const store = memoryStore({ clock })
  const c = chaos(store)
  const table = new TagTable(guardOf(c.store), clock, maxSize)
  return { table, store, calls: c.calls, chaos: c, clock }
}

describe('TagTable without L2 (its own count)', () => {
  it('every tag starts at 0: an entry stands until one of its tags is invalidated after it', () => {
    const table = new TagTable(undefined, fakeClock(), 100)
    expect(table.supported).toBe(true)
    expect(table.needsSequence).toBe(false)
    expect(table.check(['a', 'b'], 0, false)).toBe(TAGS_OK)
    expect(table.fresh(['a'], 0)).toBe(true)
    expect(table.applyLocal(['a'])).toBe(1)
    expect(table.latest).toBe(1)
    expect(table.check(['a'], 0, false)).toBe(TAGS_INVALID)
    expect(table.check(['b', 'a'], 0, false)).toBe(TAGS_INVALID)
    expect(table.check(['a'], 0, true)).toBe(TAGS_INVALID)
    expect(table.fresh(['a'], 0)).toBe(false)
    expect(table.check(['b'], 0, false)).toBe(TAGS_OK)
    // Written once the version was known: stands.
    expect(table.check(['a'], 1, false)).toBe(TAGS_OK)
    expect(table.fresh(['a'], 1)).toBe(true)
    expect(table.applyLocal(['b', 'c'])).toBe(2)
    expect(table.check(['a'], 1, false)).toBe(TAGS_OK)
    expect(table.check(['c'], 1, false)).toBe(TAGS_INVALID)
  })

  it('an invalidation heard from another process moves this process\'s own count, whatever its version there', () => {
    const table = new TagTable(undefined, fakeClock(), 100)
    table.applyLocal(['x'])
    table.heard(['a'], 99)
    expect(table.latest).toBe(2)
    expect(table.check(['a'], 1, false)).toBe(TAGS_INVALID)
    expect(table.check(['a'], 2, false)).toBe(TAGS_OK)
  })

  it('hold voids every entry with the tag until as many releases', () => {
    const table = new TagTable(undefined, fakeClock(), 100)
    table.hold(['a'])
    table.hold(['a', 'b'])
    expect(table.check(['a'], 1_000, false)).toBe(TAGS_INVALID)
    expect(table.fresh(['b'], 1_000)).toBe(false)
    expect(table.fresh(['c'], 0)).toBe(true)
    table.release(['a', 'b'])
    expect(table.fresh(['b'], 0)).toBe(true)
    expect(table.fresh(['a'], 1_000)).toBe(false)
    table.release(['a'])
    expect(table.fresh(['a'], 0)).toBe(true)
    // A release of what is not held changes nothing.
    table.release(['a'])
    expect(table.fresh(['a'], 0)).toBe(true)
  })

  it('bounded: the oldest tags go, and an entry older than what went cannot be told', () => {
    const table = new TagTable(undefined, fakeClock(), 2)
    table.applyLocal(['t1'])
    table.applyLocal(['t2'])
    table.applyLocal(['t3'])
    expect(table.size).toBe(2)
    // t1 (version 1) went: an entry of it written before version 1 may be void; one after stands.
    expect(table.check(['t1'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.fresh(['t1'], 0)).toBe(false)
    expect(table.check(['t1'], 1, false)).toBe(TAGS_OK)
    expect(table.check(['never'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.check(['t3'], 2, false)).toBe(TAGS_INVALID)
    expect(table.check(['t3'], 3, false)).toBe(TAGS_OK)
  })
})

describe('TagTable over L2', () => {
  it('knows nothing before the sequence is read; a read of it makes untouched tags known', async () => {
    const { table, store, calls } = withStore()
    await invalidate(store, ['a'])
    await invalidate(store, ['b'])
    expect(table.needsSequence).toBe(true)
    expect(table.check(['c'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.fresh(['c'], 5)).toBe(false)
    expect(await table.ensure([])).toBe(true)
    expect(calls.getTagVersions).toBe(1)
    expect(table.needsSequence).toBe(false)
    expect(table.latest).toBe(2)
    // Written at the sequence read: stands without a look (every later invalidation is heard).
    expect(table.fresh(['a', 'c'], 2)).toBe(true)
    // Written before: the tags it does not hold may have moved since.
    expect(table.check(['c'], 1, false)).toBe(TAGS_UNKNOWN)
    expect(await table.ensure(['a', 'c'])).toBe(true)
    expect(table.check(['c'], 1, false)).toBe(TAGS_OK)
    expect(table.check(['a'], 0, false)).toBe(TAGS_INVALID)
    expect(table.check(['a'], 1, false)).toBe(TAGS_OK)
  })

  it('concurrent reads of the same tags share one store call', async () => {
    const { table, calls } = withStore()
    const reads = [table.ensure(['a', 'b']), table.ensure(['a', 'b']), table.ensure(['a', 'b'])]
    expect(await Promise.all(reads)).toEqual([true, true, true])
    expect(calls.getTagVersions).toBe(1)
    await table.ensure(['a', 'b'])
    expect(calls.getTagVersions).toBe(2)
  })

  it('a read that fails answers false and teaches nothing', async () => {
    const { table, chaos: c } = withStore()
    c.fail('getTagVersions', 'error')
    expect(await table.ensure(['a'])).toBe(false)
    expect(table.needsSequence).toBe(true)
    expect(table.check(['a'], 0, false)).toBe(TAGS_UNKNOWN)
  })

  it('versions never go back: a late read does not undo an invalidation heard meanwhile', async () => {
    const store = memoryStore()
    const late = deferred<TagVersions>()
    const slow: RemoteStore = { ...store, getTagVersions: () => late.promise }
    const table = new TagTable(guardOf(slow), fakeClock(), 100)
    const reading = table.ensure(['a'])
    table.apply(['a'], 5)
    late.resolve({ sequence: 1, versions: [1] })
    expect(await reading).toBe(true)
    expect(table.latest).toBe(5)
    expect(table.check(['a'], 4, false)).toBe(TAGS_INVALID)
    expect(table.check(['a'], 5, false)).toBe(TAGS_OK)
  })

  it('a read issued before a reset proves nothing after it', async () => {
    const store = memoryStore()
    const late = deferred<TagVersions>()
    const slow: RemoteStore = { ...store, getTagVersions: () => late.promise }
    const table = new TagTable(guardOf(slow), fakeClock(), 100)
    const reading = table.ensure(['a'])
    table.reset()
    late.resolve({ sequence: 3, versions: [0] })
    expect(await reading).toBe(false)
    expect(table.needsSequence).toBe(true)
    expect(table.check(['a'], 0, false)).toBe(TAGS_UNKNOWN)
    // What it learnt of the sequence still counts as a lower bound.
    expect(table.latest).toBe(3)
  })

  it('with a cap (an unhealthy bus) knowledge older than the cap is unknown, but still good for a grace copy', async () => {
    const { table, clock } = withStore()
    await table.ensure(['a'])
    table.cap = 1_000
    expect(table.check(['a'], 0, false)).toBe(TAGS_OK)
    // The one-comparison test is off: each tag is looked at.
    clock.advance(999)
    expect(table.fresh(['a'], 0)).toBe(true)
    clock.advance(1)
    expect(table.check(['a'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.check(['b'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.fresh(['a'], 10)).toBe(false)
    expect(table.check(['a'], 0, true)).toBe(TAGS_OK)
    // An applied invalidation still voids, however old.
    table.apply(['a'], 1)
    clock.advance(10_000)
    expect(table.check(['a'], 0, false)).toBe(TAGS_INVALID)
    expect(table.check(['a'], 0, true)).toBe(TAGS_INVALID)
    // Read again: trusted again.
    expect(await table.ensure(['a', 'b'])).toBe(true)
    expect(table.check(['a'], 1, false)).toBe(TAGS_OK)
    expect(table.check(['b'], 0, false)).toBe(TAGS_OK)
    table.cap = Infinity
    clock.advance(60_000)
    expect(table.fresh(['a'], 1)).toBe(true)
  })

  it('bounded: a tag that went is read again, and what it answers decides', async () => {
    const { table, store } = withStore(2)
    await table.ensure([])
    for (const tag of ['t1', 't2', 't3']) table.apply([tag], await invalidate(store, [tag]))
    expect(table.size).toBe(2)
    expect(table.check(['t1'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(table.check(['x'], 0, false)).toBe(TAGS_UNKNOWN)
    expect(await table.ensure(['t1', 'x'])).toBe(true)
    expect(table.check(['t1'], 0, false)).toBe(TAGS_INVALID)
    expect(table.check(['x'], 0, false)).toBe(TAGS_OK)
    expect(table.size).toBe(2)
  })

  it('a store without the tag methods is not supported', () => {
    const { getTagVersions: _g, invalidateTags: _i, ...rest } = memoryStore()
    expect(new TagTable(guardOf(rest), fakeClock(), 10).supported).toBe(false)
    expect(new TagTable(guardOf(memoryStore()), fakeClock(), 10).supported).toBe(true)
  })
})
