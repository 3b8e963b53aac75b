import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { childPool, type ChildPool } from '../src/child.js'
import { FlagsError, parseFlags } from '../src/flags.js'
import { formatRatio, markdownTable, tableCells, textTable } from '../src/format.js'
import { applyRatios } from '../src/ratios.js'
import { publishedTarget, resultsTarget, writeReport } from '../src/report.js'
import type { Row } from '../src/scenario.js'
import { SCENARIO_IDS, loadScenario } from '../src/scenarios/index.js'
import { histogramPercentile, mergeHistograms, newHistogram, record, slowerThan } from '../src/histogram.js'
import { phasesOf, rowsOf, type PhaseResult } from '../src/scenarios/loading.js'
import { barChartSvg } from '../src/svg.js'
import { zipf, zipfSequence, seededRandom } from '../src/zipf.js'

describe('parseFlags', () => {
  it('ignores the literal -- that pnpm forwards', () => {
    expect(parseFlags(['--', '--quick'])).toEqual({ quick: true, only: undefined })
  })
  it('takes comma lists and repeated --only, in registry order', () => {
    expect(parseFlags(['--only', 'outage,l1-hit', '--only=memory']).only).toEqual(['l1-hit', 'memory', 'outage'])
  })
  it('rejects unknown scenarios and arguments', () => {
    expect(() => parseFlags(['--only', 'nope'])).toThrow(FlagsError)
    expect(() => parseFlags(['--fast'])).toThrow(/unknown argument/)
    expect(() => parseFlags(['--only'])).toThrow(/needs a scenario id/)
  })
  it('publishes full runs only, and only benchmarks', () => {
    expect(parseFlags(['--publish'])).toEqual({ quick: false, only: undefined, publish: 'run' })
    expect(parseFlags(['--publish-last']).publish).toBe('last')
    expect(() => parseFlags(['--publish', '--quick'])).toThrow(/publishes a full run/)
    expect(() => parseFlags(['--only', 'memory', '--publish-last'])).toThrow(/publishes a full run/)
    expect(() => parseFlags(['--publish'], ['kill'], 'fault')).toThrow(/unknown argument/)
  })
})

describe('writeReport', () => {
  const meta = { date: '2026-12-04T00:00:00.000Z', node: 'v20', cpu: 'cpu', machine: { os: 'linux', arch: 'x64', cores: 2, memoryGiB: 24, freeMemoryGiB: 20 }, versions: { 'redis-server': '7.0.15' }, quick: false }
  const results = [
    {
      id: 'l1-hit',
      scenario: { id: 'l1-hit', title: 'L1 hits', measures: 'hits', ratioOf: 'opsPerSec' as const, run: async () => [] },
      rows: applyRatios([{ name: 'lru-cache', variant: 'get', baseline: true, opsPerSec: 100 }, { name: 'tiercache', variant: 'get', opsPerSec: 50 }], 'opsPerSec'),
      status: 'ok' as const,
      durationMs: 1000,
    },
  ]
  it('writes the run report with its charts beside it, and the published page with them in docs/benchmarks/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-report-'))
    try {
      writeReport(resultsTarget(join(dir, 'results')), meta, results)
      writeReport(publishedTarget(join(dir, 'docs')), meta, results)
      const report = readFileSync(join(dir, 'results', 'REPORT.md'), 'utf8')
      const page = readFileSync(join(dir, 'docs', 'benchmarks.md'), 'utf8')
      expect(report).toMatch(/^# tiercache benchmark report/)
      expect(report).toContain('](l1-hit-ratio.svg)')
      expect(page).toMatch(/^# Benchmarks/)
      expect(page).toContain('Run 2026-12-04T00:00:00.000Z')
      expect(page).toContain('](benchmarks/l1-hit-ratio.svg)')
      expect(page).toContain('[latest.json](benchmarks/latest.json)')
      expect(existsSync(join(dir, 'docs', 'benchmarks', 'l1-hit-ratio.svg'))).toBe(true)
      expect(JSON.parse(readFileSync(join(dir, 'docs', 'benchmarks', 'latest.json'), 'utf8')).meta.date).toBe(meta.date)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('applyRatios', () => {
  it('divides by the baseline of the same group', () => {
    const rows: Row[] = [
      { name: 'a', variant: 'x', group: 'g1', baseline: true, opsPerSec: 100 },
      { name: 'b', variant: 'x', group: 'g1', opsPerSec: 250 },
      { name: 'a', variant: 'x', group: 'g2', baseline: true, opsPerSec: 10 },
      { name: 'b', variant: 'x', group: 'g2', opsPerSec: 5 },
      { name: 'c', variant: 'no figure', group: 'g2' },
      { name: 'd', variant: 'no baseline', group: 'g3', opsPerSec: 1 },
    ]
    expect(applyRatios(rows, 'opsPerSec').map((r) => r.ratio)).toEqual([1, 2.5, 1, 0.5, undefined, undefined])
  })
})

describe('tables', () => {
  const rows: Row[] = [
    { name: 'lru-cache', variant: 'get', baseline: true, opsPerSec: 12_345_678, p50Us: 0.0171, ratio: 1 },
    { name: 'peer', variant: 'a|b', opsPerSec: 6_600, p50Us: 165.2, ratio: 0.000535, note: 'slow' },
  ]
  it('aligns columns and marks the baseline', () => {
    const text = textTable(tableCells({ ratioOf: 'opsPerSec' }, rows))
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^name\s+variant\s+ops\/s\s+p50 µs\s+ratio \(ops\/s\)\s+note$/)
    expect(lines[2]).toContain('get (baseline)')
    expect(lines[2]).toContain('12.35 M')
    // every line has the ratio column ending at the same position
    const ends = lines.slice(2).map((line) => line.indexOf('×'))
    expect(new Set(ends).size).toBe(1)
  })
  it('keeps two significant digits of small ratios', () => {
    expect(formatRatio(0.00067)).toBe('0.00067×')
    expect(formatRatio(0.5)).toBe('0.50×')
    expect(formatRatio(25.33)).toBe('25.3×')
  })
  it('escapes pipes in Markdown cells', () => {
    expect(markdownTable(tableCells(undefined, rows))).toContain('a\\|b')
  })
})

describe('barChartSvg', () => {
  it('escapes labels and draws one bar per value', () => {
    const svg = barChartSvg({ title: 'a <b> & c', series: ['p50', 'p99'], bars: [{ label: 'x<y', values: [1, 2] }, { label: 'z', values: [3, undefined] }], format: String })
    expect(svg).toContain('a &lt;b&gt; &amp; c')
    expect(svg).toContain('x&lt;y')
    expect(svg.match(/<rect x="\d/g)?.length).toBeGreaterThanOrEqual(3)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
  })
})

describe('zipf', () => {
  it('is deterministic per seed and stays in range', () => {
    const a = zipfSequence(100, 10_000, 1, 1)
    const b = zipfSequence(100, 10_000, 1, 1)
    expect(a).toEqual(b)
    expect(Math.max(...a)).toBeLessThan(100)
  })
  it('makes low indexes hot', () => {
    const next = zipf(1000, 1, seededRandom(3))
    const counts = new Map<number, number>()
    for (let i = 0; i < 50_000; i++) {
      const k = next()
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    // P(0) ≈ 1/H(1000) ≈ 13 %; the tail key 999 ≈ 0.013 %.
    expect(counts.get(0)!).toBeGreaterThan(5000)
    expect(counts.get(0)!).toBeGreaterThan(10 * (counts.get(10) ?? 0))
  })
})

describe('scenario registry', () => {
  it('reports a scenario without a file as not available instead of throwing', async () => {
    const loaded = await loadScenario('no-such-scenario')
    expect('unavailable' in loaded && loaded.unavailable).toMatch(/not available/)
  })
})

describe('loading scenario', () => {
  it('is registered last, under its own id, with its figures as columns', async () => {
    expect(SCENARIO_IDS.at(-1)).toBe('loading')
    expect(parseFlags(['--only', 'loading']).only).toEqual(['loading'])
    const loaded = await loadScenario('loading')
    if (!('scenario' in loaded)) throw new Error(loaded.unavailable)
    expect(loaded.scenario.id).toBe('loading')
    expect(loaded.scenario.ratioOf).toBe('loaderCallsPerSec')
    expect(loaded.scenario.columns).toEqual(['opsPerSec', 'hitRatePct', 'loaderCallsPerSec', 'l2ReadsPerSec', 'p50Us', 'p99Us', 'maxUs'])
  })
  it('keeps its schedule within the budget (60 s full, 30 s quick, with room for starting 4 children)', () => {
    const total = (quick: boolean) => phasesOf(quick).reduce((a, p) => a + p.warmupMs + p.measureMs + 500, 0)
    expect(total(false)).toBeLessThanOrEqual(50_000)
    expect(total(true)).toBeLessThanOrEqual(22_000)
  })
  it('merges latency histograms across processes to within 1 %', () => {
    const a = newHistogram()
    const b = newHistogram()
    for (let i = 1; i <= 990; i++) record(a, i)
    for (let i = 1; i <= 10; i++) record(b, 100_000 * i)
    const h = mergeHistograms([a, b])
    expect(h.count).toBe(1000)
    expect(h.maxUs).toBe(1_000_000)
    expect(histogramPercentile(h, 50)! / 500).toBeCloseTo(1, 1)
    expect(Math.abs(histogramPercentile(h, 99)! / 990 - 1)).toBeLessThan(0.011)
    expect(histogramPercentile(h, 100)).toBe(1_000_000)
    expect(slowerThan(h, 1_000)).toBe(10)
    expect(histogramPercentile(newHistogram(), 99)).toBeUndefined()
  })
  it('sums the processes into one row per phase, with a baseline per group', () => {
    const phases = phasesOf(true)
    const result = (l1Hits: number): PhaseResult => {
      const histogram = newHistogram()
      record(histogram, 2)
      return {
        reads: 1000,
        errors: 0,
        droppedReads: 0,
        elapsedMs: 2000,
        lateMs: 0,
        counted: { l1Hits, l2Hits: 100, misses: 100, loaderCalls: 50, staleServed: 0, refreshes: 0, leaseWaits: 0, loaderErrors: 0, l2Errors: 0, breakerTransitions: 0, l1Flushes: 0, busMessagesApplied: 0, l2Reads: 200 },
        histogram,
        loopDelay: { p99Ms: 1, maxMs: 2 },
        leases: { granted: 10, filled: 10 },
      }
    }
    const rows = rowsOf(phases, Array.from({ length: 4 }, () => phases.map(() => result(800))))
    expect(rows.map((r) => r.variant)).toEqual(phases.filter((p) => p.report !== false).map((p) => p.variant))
    expect(rows.filter((r) => r.baseline).map((r) => r.group)).toEqual(['zipf', 'hot key', 'hot key, paced'])
    expect(rows[0]).toMatchObject({ opsPerSec: 2000, hitRatePct: 90, loaderCallsPerSec: 100, l2ReadsPerSec: 400, maxUs: 2 })
    expect(applyRatios(rows, 'loaderCallsPerSec').map((r) => r.ratio)).toEqual(rows.map(() => 1))
  })
})

describe('runInChild', () => {
  const module = fileURLToPath(new URL('./fixtures/children.ts', import.meta.url))
  const ctx = { quick: true, redis: { host: '127.0.0.1', port: 1, url: 'redis://127.0.0.1:1' }, fixtures: { taskProgress: {}, taskStatus: {}, taskListPage: {} }, timeMs: 10, keyPrefix: 'p:' }
  let pool: ChildPool
  afterEach(() => pool?.killAll())

  it('returns the rows and forwards logs', async () => {
    pool = childPool()
    const logs: string[] = []
    const rows = await pool.run(module, 'echo', { n: 7 }, ctx, {}, (m) => logs.push(m))
    expect(rows).toEqual([{ name: 'echo', variant: '7', opsPerSec: 7, note: 'p:' }])
    expect(logs).toEqual(['echo 7'])
  })
  it('rejects with the child error', async () => {
    pool = childPool()
    await expect(pool.run(module, 'fails', {}, ctx, {}, () => {})).rejects.toThrow(/boom from the child/)
  })
  it('rejects when the child exits without rows', async () => {
    pool = childPool()
    await expect(pool.run(module, 'exits', {}, ctx, {}, () => {})).rejects.toThrow(/exited \(code 3\) without rows/)
  })
  it('kills a child that passes its deadline', async () => {
    pool = childPool()
    await expect(pool.run(module, 'hangs', {}, ctx, { timeoutMs: 3000 }, () => {})).rejects.toThrow(/deadline/)
  })
  it('rejects a missing export', async () => {
    pool = childPool()
    await expect(pool.run(module, 'nothing', {}, ctx, {}, () => {})).rejects.toThrow(/does not export a function named nothing/)
  })
})
