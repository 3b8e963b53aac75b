import { describe, expect, it } from 'vitest'
import { DEFAULT_MIX, fleetCost, measuredOf, parseArgs, scalingTable } from '../src/scaling.js'
import type { Row } from '../src/scenario.js'

const rows: Row[] = [
  { name: 'tiercache', variant: 'v', group: 'processes', processes: 2, p50Us: 1000, busMessagesPerNodePerSec: 4.2 },
  { name: 'tiercache', variant: 'v', group: 'processes', processes: 8, p50Us: 2000, busMessagesPerNodePerSec: 4 },
  { name: 'tiercache', variant: 'one', group: 'cluster', masters: 1, opsPerSec: 100_000 },
  { name: 'tiercache', variant: 'three', group: 'cluster', masters: 3, opsPerSec: 40_000 },
]

describe('scaling model', () => {
  it('takes the idle rate of the largest fleet and the cluster figures from the scale rows', () => {
    expect(measuredOf(rows)).toEqual({ idleMessagesPerNode: 4, atProcesses: 8, l2HitsPerSecOneNode: 100_000, l2HitsPerSecCluster: 40_000 })
  })

  it('refuses a run without scale rows', () => {
    expect(() => measuredOf([])).toThrow(/no scale rows/)
  })

  it('grows commands linearly in the fleet and invalidation deliveries with its square', () => {
    const measured = measuredOf(rows)
    const mix = { ...DEFAULT_MIX, reads: 1000, writes: 10, l1Hit: 0.9, l2Hit: 1 }
    const ten = fleetCost(10, mix, measured)
    const hundred = fleetCost(100, mix, measured)
    // Per process: 100 GETs, 2 × 10 for the writes, 4 heartbeats, 1 PING.
    expect(ten.commandsPerSec).toBeCloseTo(10 * 125)
    expect(hundred.commandsPerSec).toBeCloseTo(10 * ten.commandsPerSec)
    // Heartbeats: N × 4; invalidations: N writers × 10/s, each delivered to N nodes.
    expect(ten.deliveriesPerSec).toBeCloseTo(10 * 4 + 10 * 10 * 10)
    expect(hundred.deliveriesPerSec).toBeCloseTo(100 * 4 + 100 * 10 * 100)
    // An idle fleet (no reads, no writes) costs Redis only its heartbeats and pings, linear in N.
    const idle = fleetCost(1000, { ...mix, reads: 0, writes: 0 }, measured)
    expect(idle.deliveriesPerSec).toBeCloseTo(4000)
    expect(idle.commandsPerSec).toBeCloseTo(5000)
  })

  it('prints one table row per fleet size', () => {
    const table = scalingTable(DEFAULT_MIX, measuredOf(rows), [10, 100, 1000])
    expect(table.split('\n').filter((line) => /^\| [\d,]+ \|/.test(line))).toHaveLength(3)
    expect(table).toContain('| 1,000 |')
  })
})

describe('parseArgs', () => {
  it('skips the literal -- that pnpm forwards, and takes a relative file from where the command was typed', () => {
    const { mix, file } = parseArgs(['--', '--writes', '50', '--file', 'docs/benchmarks/latest.json'], '/repo')
    expect(mix).toEqual({ ...DEFAULT_MIX, writes: 50 })
    expect(file).toBe('/repo/docs/benchmarks/latest.json')
  })

  it('names the flag and what it expects', () => {
    expect(() => parseArgs(['--l1-hit', '2'], '/repo')).toThrow('--l1-hit: expected a share between 0 and 1 (got 2)')
    expect(() => parseArgs(['--reads'], '/repo')).toThrow('--reads: expected a number ≥ 0 (got nothing)')
    expect(() => parseArgs(['--hits', '1'], '/repo')).toThrow('unknown option --hits')
    expect(() => parseArgs(['--file'], '/repo')).toThrow('--file: expected a path (got nothing)')
  })
})
