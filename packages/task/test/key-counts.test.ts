import type { Logger, StoreInfo, TieredCache } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { KEY_COUNT_MAX_AGE_MS, KeyCounts } from '../src/key-counts.js'

type Answer = StoreInfo | undefined | Error

/** A cache whose l2Info answers from `answers` in turn (the last one repeats); each call is counted. */
function fakeCache(...answers: Answer[]) {
  const state = { calls: 0, args: [] as unknown[][], answers }
  const cache = {
    async l2Info(...args: unknown[]): Promise<StoreInfo | undefined> {
      const answer = state.answers[Math.min(state.calls, state.answers.length - 1)]
      state.calls += 1
      state.args.push(args)
      if (answer instanceof Error) throw answer
      return answer
    },
  }
  return { cache: cache as unknown as TieredCache, state }
}

/** A cache whose l2Info calls wait until the test settles them. */
function gatedCache() {
  const pending: { resolve: (info: StoreInfo | undefined) => void; reject: (error: Error) => void }[] = []
  const cache = {
    l2Info: () => new Promise<StoreInfo | undefined>((resolve, reject) => pending.push({ resolve, reject })),
  }
  return { cache: cache as unknown as TieredCache, pending }
}

function fakeLog() {
  const warnings: [object | string, string | undefined][] = []
  const log: Logger = {
    debug() {},
    info() {},
    warn(obj, msg) {
      warnings.push([obj, msg])
    },
    error() {},
  }
  return { log, warnings }
}

const info = (keysByFamily: Record<string, number>, connection: StoreInfo['connection'] = 'ready'): StoreInfo => ({
  usedMemoryBytes: 1024,
  keysByFamily,
  connection,
})

const MAX_AGE = 60_000

function counts(cache: TieredCache, maxAgeMs = MAX_AGE) {
  const clock = { t: 1_000_000 }
  const { log, warnings } = fakeLog()
  return { keys: new KeyCounts(cache, log, maxAgeMs, () => clock.t), clock, warnings }
}

describe('KeyCounts', () => {
  it('reuses the counts within the maximum age, and counts once', async () => {
    const { cache, state } = fakeCache(info({ 'task:status@1': 3 }), info({ 'task:status@1': 99 }))
    const { keys, clock } = counts(cache)
    const first = await keys.read()
    expect(first).toEqual({ byFamily: { 'task:status@1': 3 }, countedAt: 1_000_000 })
    clock.t += MAX_AGE - 1
    expect(await keys.read()).toBe(first)
    expect(state.calls).toBe(1)
    // Asked for the key counts: the default options, not { keys: false }.
    expect(state.args[0]).toEqual([])
  })

  it('scans again once the maximum age has passed', async () => {
    const { cache, state } = fakeCache(info({ 'task:status@1': 3 }), info({ 'task:status@1': 7 }))
    const { keys, clock } = counts(cache)
    await keys.read()
    clock.t += MAX_AGE
    expect(await keys.read()).toEqual({ byFamily: { 'task:status@1': 7 }, countedAt: 1_000_000 + MAX_AGE })
    expect(state.calls).toBe(2)
  })

  it('dates the counts when the scan ended', async () => {
    const { cache, pending } = gatedCache()
    const { keys, clock } = counts(cache)
    const read = keys.read()
    clock.t += 250
    pending[0]?.resolve(info({ 'task:list@2': 1 }))
    expect((await read)?.countedAt).toBe(1_000_250)
  })

  it('shares one scan between concurrent reads', async () => {
    const { cache, pending } = gatedCache()
    const { keys } = counts(cache)
    const a = keys.read()
    const b = keys.read()
    expect(pending).toHaveLength(1)
    pending[0]?.resolve(info({ 'task:status@1': 5 }))
    const [first, second] = await Promise.all([a, b])
    expect(first).toEqual({ byFamily: { 'task:status@1': 5 }, countedAt: 1_000_000 })
    expect(second).toBe(first)
    expect(pending).toHaveLength(1)
  })

  it('starts a new scan after a shared one has ended', async () => {
    const { cache, pending } = gatedCache()
    const { keys, clock } = counts(cache)
    const first = keys.read()
    pending[0]?.resolve(info({ a: 1 }))
    await first
    clock.t += MAX_AGE
    const second = keys.read()
    expect(pending).toHaveLength(2)
    pending[1]?.resolve(info({ a: 2 }))
    expect((await second)?.byFamily).toEqual({ a: 2 })
  })

  it('scans again after forget(), within the maximum age', async () => {
    const { cache, state } = fakeCache(info({ 'task:status@1': 3 }), info({ 'task:status@1': 0 }))
    const { keys, clock } = counts(cache)
    await keys.read()
    clock.t += 10
    keys.forget()
    expect(await keys.read()).toEqual({ byFamily: { 'task:status@1': 0 }, countedAt: 1_000_010 })
    expect(state.calls).toBe(2)
  })

  it('does not hand a scan under way at forget() to the reads after it', async () => {
    const { cache, pending } = gatedCache()
    const { keys } = counts(cache)
    const before = keys.read()
    keys.forget()
    const after = keys.read()
    expect(pending).toHaveLength(2)
    pending[1]?.resolve(info({ a: 0 }))
    expect((await after)?.byFamily).toEqual({ a: 0 })
    // The older scan may have counted before the action: what it found is dropped.
    pending[0]?.resolve(info({ a: 9 }))
    expect((await before)?.byFamily).toEqual({ a: 0 })
    expect((await keys.read())?.byFamily).toEqual({ a: 0 })
    expect(pending).toHaveLength(2)
  })

  it('keeps one scan under way when a scan from before forget() ends first', async () => {
    const { cache, pending } = gatedCache()
    const { keys } = counts(cache)
    const before = keys.read()
    keys.forget()
    const after = keys.read()
    pending[0]?.resolve(info({ a: 9 }, 'connecting'))
    await before
    // The newer scan is still the one under way: a read now joins it instead of starting a third.
    const joined = keys.read()
    expect(pending).toHaveLength(2)
    pending[1]?.resolve(info({ a: 1 }))
    expect((await joined)?.byFamily).toEqual({ a: 1 })
    expect((await after)?.byFamily).toEqual({ a: 1 })
  })

  it('keeps the previous counts and logs a warning when the scan fails, and never rejects', async () => {
    const boom = new Error('redis is down')
    const { cache, state } = fakeCache(info({ 'task:status@1': 3 }), boom)
    const { keys, clock, warnings } = counts(cache)
    const first = await keys.read()
    clock.t += MAX_AGE
    await expect(keys.read()).resolves.toBe(first)
    expect(warnings).toEqual([[{ err: boom }, 'task cache statistics: keys not counted']])
    // The old counts are not refreshed by a failure: the next read tries again.
    await expect(keys.read()).resolves.toBe(first)
    expect(state.calls).toBe(3)
    expect(warnings).toHaveLength(2)
  })

  it('answers undefined when the first scan fails', async () => {
    const { cache } = fakeCache(new Error('no route to host'))
    const { keys, warnings } = counts(cache)
    await expect(keys.read()).resolves.toBeUndefined()
    expect(warnings).toHaveLength(1)
  })

  it('takes no counts while the connection is not ready, keeping the previous ones', async () => {
    for (const connection of ['connecting', 'reconnecting', 'closed', 'error'] as const) {
      const { cache, state } = fakeCache(info({ a: 1 }), info({ a: 0 }, connection), info({ a: 2 }))
      const { keys, clock, warnings } = counts(cache)
      const first = await keys.read()
      clock.t += MAX_AGE
      expect(await keys.read(), connection).toBe(first)
      // Not counted as a scan: the next read scans again, and takes the ready answer.
      expect((await keys.read())?.byFamily, connection).toEqual({ a: 2 })
      expect(state.calls).toBe(3)
      expect(warnings).toEqual([])
    }
  })

  it('answers undefined while not connected before any count, and without L2', async () => {
    const { cache: connecting } = fakeCache(info({ a: 1 }, 'connecting'))
    expect(await counts(connecting).keys.read()).toBeUndefined()
    const { cache: noL2, state } = fakeCache(undefined)
    const { keys } = counts(noL2)
    expect(await keys.read()).toBeUndefined()
    expect(await keys.read()).toBeUndefined()
    // Nothing to reuse: every read asks again.
    expect(state.calls).toBe(2)
  })

  it('reuses the counts for a minute by default', async () => {
    expect(KEY_COUNT_MAX_AGE_MS).toBe(60_000)
    const { cache, state } = fakeCache(info({ a: 1 }))
    const { log } = fakeLog()
    const keys = new KeyCounts(cache, log)
    await keys.read()
    await keys.read()
    expect(state.calls).toBe(1)
  })
})
