// The chaos runner's judge: wrong values, stale reads beyond the bound, and recovery time.
import { describe, expect, it } from 'vitest'
import { judge, NumberLog, recoveryOf, valueHash, type ReadRecords, type Sample, type Version } from '../src/chaos/judge.js'

const BOUND = 3_000
const ENTITIES = ['status:t1', 'status:t2']

/** One process's reads: [entity, value, start, end]. */
function reads(list: readonly [string, unknown, number, number][]): ReadRecords {
  const log = new NumberLog(4)
  for (const [entity, value, start, end] of list) log.add(ENTITIES.indexOf(entity), valueHash(value), start, end)
  return log.toArray()
}

const v = (value: unknown, started: number, acked: number | undefined): Version => ({ hash: valueHash(value), started, acked })

describe('valueHash', () => {
  it('ignores key order and tells values apart', () => {
    expect(valueHash({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(valueHash({ b: [1, { d: 3, c: 2 }], a: 1 }))
    expect(valueHash({ a: 1 })).not.toBe(valueHash({ a: 2 }))
    expect(valueHash(null)).not.toBe(valueHash({}))
    expect(Number.isSafeInteger(valueHash({ a: 1 }))).toBe(true)
    // As in JSON: a key holding undefined is absent (a value decoded from L2 may lack it).
    expect(valueHash({ a: 1, b: undefined })).toBe(valueHash({ a: 1 }))
  })
})

describe('judge', () => {
  const history = new Map([['status:t1', [v({ s: 'pending' }, 0, 0), v({ s: 'running' }, 10_000, 10_050), v({ s: 'failed' }, 20_000, 20_040)]]])

  it('passes current values, and old ones read within the bound of their replacement', () => {
    const seen = reads([
      ['status:t1', { s: 'pending' }, 1_000, 1_001],
      ['status:t1', { s: 'pending' }, 10_050 + BOUND - 1, 10_050 + BOUND],
      ['status:t1', { s: 'running' }, 15_000, 15_002],
      ['status:t1', { s: 'failed' }, 30_000, 30_001],
    ])
    expect(judge(history, ENTITIES, [seen], BOUND)).toEqual({ wrongValues: 0, staleBeyondBound: 0, examples: [] })
  })

  it('counts a value read more than the bound after the write that replaced it was acknowledged', () => {
    const seen = reads([['status:t1', { s: 'running' }, 20_040 + BOUND + 1, 20_040 + BOUND + 2]])
    const out = judge(history, ENTITIES, [seen], BOUND)
    expect(out.staleBeyondBound).toBe(1)
    expect(out.wrongValues).toBe(0)
    expect(out.examples[0]).toMatch(/status:t1: served 3001 ms after it was replaced/)
  })

  it('excuses a value whose replacement is still in flight', () => {
    const inFlight = new Map([['status:t1', [v({ s: 'pending' }, 0, 0), v({ s: 'running' }, 10_000, undefined)]]])
    expect(judge(inFlight, ENTITIES, [reads([['status:t1', { s: 'pending' }, 60_000, 60_001]])], BOUND).staleBeyondBound).toBe(0)
  })

  it('counts every read of a value the entity never held, or held only later, as wrong', () => {
    const seen = reads([
      ['status:t1', { s: 'cancelled' }, 1_000, 1_001],
      ['status:t1', { s: 'cancelled' }, 2_000, 2_001],
      // Another entity's value.
      ['status:t2', { s: 'pending' }, 1_000, 1_001],
      // Before the write that made it began.
      ['status:t1', { s: 'failed' }, 5_000, 5_001],
    ])
    expect(judge(history, ENTITIES, [seen], BOUND)).toMatchObject({ wrongValues: 4, staleBeyondBound: 0 })
  })

  it('takes a value that came back later as its latest version', () => {
    const back = new Map([['status:t1', [v({ s: 'running' }, 0, 0), v({ s: 'failed' }, 10_000, 10_010), v({ s: 'running' }, 20_000, 20_010)]]])
    expect(judge(back, ENTITIES, [reads([['status:t1', { s: 'running' }, 50_000, 50_001]])], BOUND).staleBeyondBound).toBe(0)
  })

  it('judges each read: a value that comes back later does not hide a stale read of it in between', () => {
    const back = new Map([['status:t1', [v({ s: 'running' }, 0, 0), v({ s: 'failed' }, 10_000, 10_010), v({ s: 'running' }, 30_000, 30_010)]]])
    const seen = reads([
      ['status:t1', { s: 'running' }, 20_000, 20_001],
      ['status:t1', { s: 'running' }, 40_000, 40_001],
    ])
    expect(judge(back, ENTITIES, [seen], BOUND).staleBeyondBound).toBe(1)
  })

  it('counts from the earliest acknowledgement of a later write, past one still in flight', () => {
    const queued = new Map([['status:t1', [v({ s: 'pending' }, 0, 0), v({ s: 'running' }, 10_000, undefined), v({ s: 'failed' }, 12_000, 12_010)]]])
    const out = judge(queued, ENTITIES, [reads([['status:t1', { s: 'pending' }, 20_000, 20_001]])], BOUND)
    expect(out.staleBeyondBound).toBe(1)
    expect(out.examples[0]).toMatch(/served 7990 ms after it was replaced/)
  })

  it('judges every process', () => {
    const fresh = reads([['status:t1', { s: 'failed' }, 30_000, 30_001]])
    const stale = reads([['status:t1', { s: 'pending' }, 40_000, 40_001]])
    expect(judge(history, ENTITIES, [fresh, stale], BOUND).staleBeyondBound).toBe(1)
  })
})

describe('recoveryOf', () => {
  const sample = (t: number, hits: number, errors: number, closed = 1): Sample => [t, hits, errors, closed]

  it('is the latest, over the processes, of the first clean L2 answer after the heal', () => {
    const a = [sample(900, 10, 0), sample(1_000, 10, 5, 0), sample(1_050, 10, 6, 0), sample(1_100, 12, 6), sample(1_150, 14, 6)]
    const b = [sample(1_000, 3, 1, 0), sample(1_050, 3, 2), sample(1_100, 3, 2), sample(1_250, 9, 2)]
    expect(recoveryOf([a, b], 1_000)).toBe(250)
  })

  it('needs the breaker closed and no new errors in the interval', () => {
    const list = [sample(1_000, 0, 0), sample(1_050, 5, 1), sample(1_100, 9, 1, 0), sample(1_150, 12, 1)]
    expect(recoveryOf([list], 1_000)).toBe(150)
  })

  it('is null when a process never served from L2 again', () => {
    expect(recoveryOf([[sample(1_000, 4, 0), sample(1_050, 4, 3)]], 1_000)).toBeNull()
  })
})
