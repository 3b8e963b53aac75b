// FrequencySketch: the per-process estimate of how often a key is read, behind adaptive TTLs.
import { describe, expect, it } from 'vitest'
import { FrequencySketch } from '../src/load/frequency-sketch.js'

/** Records `key` `times` times. */
function recordTimes(sketch: FrequencySketch, key: string, times: number): void {
  for (let i = 0; i < times; i++) sketch.record(key)
}

describe('FrequencySketch', () => {
  it('estimates 0 for a key never recorded', () => {
    const sketch = new FrequencySketch(1_000)
    expect(sketch.estimate('never')).toBe(0)
    sketch.record('other')
    expect(sketch.estimate('never')).toBe(0)
  })

  it('counts each record and saturates at 15', () => {
    const sketch = new FrequencySketch(1_000)
    for (let n = 1; n <= 15; n++) {
      sketch.record('k')
      expect(sketch.estimate('k')).toBe(n)
    }
    recordTimes(sketch, 'k', 100)
    expect(sketch.estimate('k')).toBe(15)
    expect(FrequencySketch.CEILING).toBe(15)
  })

  it('tells a key read 10 times from 1,000 keys read once', () => {
    const sketch = new FrequencySketch(1_000)
    recordTimes(sketch, 'hot', 10)
    const once = Array.from({ length: 1_000 }, (_, i) => `user:${i}:profile`)
    for (const key of once) sketch.record(key)

    const hot = sketch.estimate('hot')
    expect(hot).toBeGreaterThanOrEqual(10)
    expect(hot).toBeLessThanOrEqual(11)
    const estimates = once.map((key) => sketch.estimate(key))
    // Count-min never underestimates (before any aging)...
    expect(Math.min(...estimates)).toBeGreaterThanOrEqual(1)
    // ...and conservative update keeps the overestimate of the rare keys small.
    expect(estimates.filter((e) => e <= 2).length / once.length).toBeGreaterThanOrEqual(0.95)
  })

  it('halves every counter after sampleSize records (10 × the table width), so a key hot long ago fades', () => {
    // 1,000 expected keys: rows of 1,024 counters, a period of 10,240 records.
    const sketch = new FrequencySketch(1_000)
    recordTimes(sketch, 'hot', 15)
    const ended: number[] = []
    for (let i = 0; i < 10_240 - 15 - 1; i++) if (sketch.record(`other:${i}`)) ended.push(i)
    expect(ended).toEqual([])
    expect(sketch.estimate('hot')).toBe(15)
    // The record that ends the period says so: adaptive TTLs time their periods by it.
    expect(sketch.record('last')).toBe(true)
    expect(sketch.estimate('hot')).toBe(7)

    // Periods of reads of other keys only (a few, saturated and so adding nothing): 7 → 3 → 1 → 0.
    const fresh = ['a', 'b', 'c', 'd']
    for (const expected of [3, 1, 0]) {
      for (let i = 0; i < 10_240; i++) sketch.record(fresh[i & 3]!)
      expect(sketch.estimate('hot')).toBe(expected)
    }
    // Keys still read are halved too (the last record ended a period) and climb back from there.
    for (const key of fresh) expect(sketch.estimate(key)).toBe(7)
  })

  it('sizes any positive integer, however small or large', () => {
    for (const expected of [1, 63, 64, 65, 10_000, 2 ** 40]) {
      const sketch = new FrequencySketch(expected)
      recordTimes(sketch, 'k', 3)
      expect(sketch.estimate('k')).toBe(3)
    }
  })

  it('refuses a non-positive or non-integer expected', () => {
    for (const expected of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new FrequencySketch(expected)).toThrow(RangeError)
      expect(() => new FrequencySketch(expected)).toThrow(/expected/)
    }
  })
})
