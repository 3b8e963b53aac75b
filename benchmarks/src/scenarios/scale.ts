// scale: what grows with the size of a process's L1 and of the fleet. Run alone:
// `pnpm bench --only scale`.
//
// - l1-entries: L1 hits with 1,000, 100,000 and 1,000,000 resident entries, against lru-cache at
//   the same size (children of their own, the two libraries taking turns size by size), and the heap
//   each entry takes (scale-l1.ts).
// - processes: fleets of 2, 4 and 8 cache processes on one Redis, side by side, in rounds of blocks:
//   propagation p50 (the writer's call → a process holding the old value returns the new one) and
//   the messages each node's subscriber connection receives per second while the fleets idle
//   (heartbeats are per node: flat in N).
// - invalidate: a generational family's invalidate() with 1,000 and 1,000,000 entries resident.
// - cluster: L2 hits at 64 in flight on one node and on a 3-master cluster (scale-cluster.ts).
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNodeProcess, startRedisCluster, type NodeProcess } from '@tiercache/testkit'
import { formatNumber } from '../format.js'
import { percentile } from '../measure.js'
import { hold, propagate } from './propagation.js'
import type { Row, Scenario, ScenarioContext } from '../scenario.js'
import type { ClusterArgs } from './scale-cluster.js'
import type { InvalidateArgs, L1SizesArgs } from './scale-l1.js'

const NODE = fileURLToPath(new URL('./propagation-node.ts', import.meta.url))

export interface ScalePlan {
  l1: L1SizesArgs
  /** Children per library and size, the two libraries taking turns (ABBA); the row takes their mean. */
  l1Children: number
  invalidate: InvalidateArgs
  processes: readonly number[]
  /** Rounds of blocks: in each, every fleet runs one block of trials back to back. */
  rounds: number
  idleMs: number
}

/** Full run, and the smaller sizes `--quick` runs (named in each row's note). */
export const planOf = (quick: boolean): ScalePlan =>
  quick
    ? { l1: { sizes: [1_000, 100_000], rounds: 1 }, l1Children: 1, invalidate: { sizes: [1_000, 100_000], calls: 50 }, processes: [2, 4], rounds: 6, idleMs: 2_000 }
    : { l1: { sizes: [1_000, 100_000, 1_000_000], rounds: 3, timeMs: 1_200 }, l1Children: 2, invalidate: { sizes: [1_000, 1_000_000], calls: 200 }, processes: [2, 4, 8], rounds: 24, idleMs: 2_000 }

/** Trials in a block, and how many of its first ones warm the fleet up and are not kept. */
const BLOCK = 10
const WARM_UP = 2

/** Kept trials of one kind, µs from the writer's call. */
interface Series {
  /** Trials run so far: trial `i` writes `{ n: i }`. */
  trials: number
  /** The new value returned by the observer. */
  readonly returned: number[]
  /** The write acknowledged. */
  readonly acked: number[]
  /** The invalidation applied (tiercache only). */
  readonly applied: number[]
  /** Each round's block p50 of `returned`. */
  readonly blockP50: number[]
}

const series = (): Series => ({ trials: 0, returned: [], acked: [], applied: [], blockP50: [] })

/** One fleet: its own processes in its own namespace. */
interface Fleet {
  readonly nodes: readonly NodeProcess[]
  readonly tiercache: Series
  /** The least a write does, in the same processes: SET + PUBLISH, the observer GETs on the message. */
  readonly bare: Series
  readonly channel: string
  perNode: number[]
  /** Heartbeats missed over the idle window, summed over the fleet's nodes. */
  missed: number
}

const KEY = 'task-1'

/** Every fleet's processes start at once (one start-up storm, before anything is measured), then each joins its namespace. */
async function startFleets(sizes: readonly number[], ctx: Pick<ScenarioContext, 'redis' | 'keyPrefix'>): Promise<Fleet[]> {
  const total = sizes.reduce((sum, size) => sum + size, 0)
  const started = await Promise.allSettled(Array.from({ length: total }, () => startNodeProcess(NODE)))
  const all = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  try {
    const failed = started.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
    const prefix = ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')
    let next = 0
    const fleets = sizes.map((size): Fleet => {
      const nodes = all.slice(next, (next += size))
      return { nodes, tiercache: series(), bare: series(), channel: `${prefix}-${size}-${process.pid}:rawset`, perNode: [], missed: 0 }
    })
    await Promise.all(
      fleets.map(async (fleet) => {
        const namespace = `${prefix}-${fleet.nodes.length}-${process.pid}`
        const bare = { url: ctx.redis.url, channel: fleet.channel, key: `${fleet.channel}-key`, watch: true }
        await Promise.all(
          fleet.nodes.map(async (node) => {
            await node.call('init', { url: ctx.redis.url, namespace })
            await node.call('rawSetInit', bare)
          }),
        )
        await fleet.nodes[0]!.call('write', { key: KEY, value: { n: 0 } })
      }),
    )
    return fleets
  } catch (error) {
    await Promise.all(all.map((node) => node.stop()))
    throw error
  }
}

/**
 * Idle: only heartbeats flow. Each node's count is of its own subscriber connection; heartbeats
 * come 4 a second, so a node's count over the window is ±1 of 4 per second.
 */
async function measureIdle(fleets: readonly Fleet[], idleMs: number): Promise<void> {
  await sleep(500)
  type Stats = { delivered: number; heartbeatsMissed: number }
  const count = () => Promise.all(fleets.map((fleet) => Promise.all(fleet.nodes.map((node) => node.call<Stats>('busStats', {})))))
  const before = await count()
  const t0 = performance.now()
  await sleep(idleMs)
  const after = await count()
  const seconds = (performance.now() - t0) / 1000
  fleets.forEach((fleet, f) => {
    fleet.perNode = after[f]!.map((stats, i) => (stats.delivered - before[f]![i]!.delivered) / seconds)
    fleet.missed = after[f]!.reduce((sum, stats, i) => sum + stats.heartbeatsMissed - before[f]![i]!.heartbeatsMissed, 0)
  })
}

/** Adds one block's kept trials to a series. */
function keep(into: Series, trials: readonly { start: number; ack: number; appliedAt?: number; at: number }[]): void {
  const returned = trials.map(({ start, at }) => (at - start) * 1000)
  into.returned.push(...returned)
  into.acked.push(...trials.map(({ start, ack }) => (ack - start) * 1000))
  into.applied.push(...trials.flatMap(({ start, appliedAt }) => (appliedAt === undefined ? [] : [(appliedAt - start) * 1000])))
  into.blockP50.push(percentile(returned, 50)!)
}

/**
 * One block of a fleet: `BLOCK` trials back to back, the first `WARM_UP` not kept. In each trial
 * every other node holds the previous value, so the write invalidates N - 1 L1 copies; one of
 * them, in turn, reports when it returns the new value.
 */
async function block(fleet: Fleet): Promise<void> {
  const [writer, ...others] = fleet.nodes as [NodeProcess, ...NodeProcess[]]
  const trials = []
  for (let t = 0; t < BLOCK; t++) {
    const i = ++fleet.tiercache.trials
    await Promise.all(others.map((node) => hold(node, KEY, { n: i - 1 })))
    const trial = await propagate(writer, others[i % others.length]!, KEY, { n: i })
    if (t >= WARM_UP) trials.push(trial)
  }
  keep(fleet.tiercache, trials)
}

/** The same block for the bare baseline: every node subscribes, the observer in turn GETs on its message. */
async function bareBlock(fleet: Fleet): Promise<void> {
  const [writer, ...others] = fleet.nodes as [NodeProcess, ...NodeProcess[]]
  const trials = []
  for (let t = 0; t < BLOCK; t++) {
    const id = ++fleet.bare.trials
    const observer = others[id % others.length]!
    await observer.call('rawSetExpect', { id })
    const received = observer.waitForEvent<{ id: number; value: string | null; at: number }>('rawSet', (e) => e.id === id, { timeoutMs: 10_000 })
    const [write, { at, value }] = await Promise.all([writer.call<{ start: number; ack: number }>('rawSetWrite', { channel: fleet.channel, key: `${fleet.channel}-key`, id }), received])
    if (value !== JSON.stringify({ n: id })) throw new Error(`the SET + PUBLISH baseline read ${value} for ${id}`)
    if (t >= WARM_UP) trials.push({ start: write.start, ack: write.ack, at })
  }
  keep(fleet.bare, trials)
}

const median = (values: readonly number[]) => percentile(values, 50)!
const us = (value: number | undefined) => `${Math.round(value ?? 0).toLocaleString('en-US')} µs`

/**
 * The fleets run side by side, each in its own processes and namespace, in rounds: in each round
 * every fleet runs one block of trials back to back, the order reversed every other round. Run
 * one after the other, a fleet of 2 repeats its trials on 2 processes that stay hot in the CPU
 * caches while a fleet of 8 spreads them over 8, and the machine drifts between the runs; one
 * trial per turn instead adds the switch to every trial, which raises the fewest processes most.
 * In blocks, a fleet's kept trials run back to back (as the propagation scenario's do), its first
 * ones absorb the switch, and the rounds share the drift. Each row also gives the median of the
 * rounds' ratios to the fewest processes, from blocks a few milliseconds apart.
 */
async function measureProcesses(plan: ScalePlan, ctx: ScenarioContext): Promise<Row[]> {
  ctx.log(`processes: starting ${plan.processes.join(' + ')}`)
  const fleets = await startFleets(plan.processes, ctx)
  try {
    ctx.log('processes: idle bus')
    await measureIdle(fleets, plan.idleMs)
    ctx.log(`processes: ${plan.rounds} rounds of ${BLOCK} trials per fleet, tiercache and the bare baseline`)
    for (let round = 0; round < plan.rounds; round++) {
      const forward = round % 2 === 0
      for (const fleet of forward ? fleets : [...fleets].reverse()) {
        for (const run of forward ? [block, bareBlock] : [bareBlock, block]) await run(fleet)
      }
    }
    const trials = `${plan.rounds * (BLOCK - WARM_UP)} trials in ${plan.rounds} blocks of ${BLOCK} (first ${WARM_UP} dropped), fleets in rounds`
    const [first] = fleets as [Fleet, ...Fleet[]]
    const mean = (rates: readonly number[]) => rates.reduce((sum, rate) => sum + rate, 0) / rates.length
    // Against the fewest processes (the goals are ratios): of the p50s, and the median of the rounds' ratios.
    const against = (pick: (fleet: Fleet) => Series, fleet: Fleet) => {
      const [mine, base] = [pick(fleet), pick(first)]
      const perRound = median(mine.blockP50.map((p50, round) => p50 / base.blockP50[round]!))
      return `${(percentile(mine.returned, 50)! / percentile(base.returned, 50)!).toFixed(2)}× the p50 of ${first.nodes.length} processes (median of the rounds' ratios ${perRound.toFixed(2)}×)`
    }
    return fleets.flatMap((fleet): Row[] => {
      const rates = fleet.perNode
      const tiercache: Row = {
        name: 'tiercache',
        variant: 'set() → another process returns it; idle bus',
        group: 'processes',
        processes: fleet.nodes.length,
        p50Us: percentile(fleet.tiercache.returned, 50),
        busMessagesPerNodePerSec: mean(rates),
        note:
          `${trials}; p50 from the call: write acknowledged ${us(percentile(fleet.tiercache.acked, 50))}, invalidation applied ${us(percentile(fleet.tiercache.applied, 50))}; ` +
          `idle ${plan.idleMs / 1000} s, per node ${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)}/s, ${fleet.missed} heartbeats missed`,
      }
      const bare: Row = {
        name: 'ioredis',
        variant: 'SET + PUBLISH → a subscriber GETs it (the least a write does)',
        group: 'processes',
        processes: fleet.nodes.length,
        p50Us: percentile(fleet.bare.returned, 50),
        note: `${trials}; same processes, every one subscribed; write acknowledged ${us(percentile(fleet.bare.acked, 50))}`,
      }
      if (fleet !== first) {
        tiercache.note = `${tiercache.note}; ${against((f) => f.tiercache, fleet)}, ${(mean(rates) / mean(first.perNode)).toFixed(2)}× its bus messages`
        bare.note = `${bare.note}; ${against((f) => f.bare, fleet)}`
      }
      return [tiercache, bare]
    })
  } finally {
    await Promise.all(fleets.flatMap((fleet) => fleet.nodes.map((node) => node.stop())))
  }
}

/** The children's mean throughput and heap per entry, noting each child's throughput. */
function meanRow(children: readonly Row[]): Row {
  const mean = (figure: (row: Row) => number) => children.reduce((sum, row) => sum + figure(row), 0) / children.length
  const row: Row = { ...children[0]!, opsPerSec: mean((r) => r.opsPerSec!), heapBytesPerEntry: mean((r) => r.heapBytesPerEntry!) }
  if (children.length > 1) row.note = `${row.note}; mean of ${children.length} children (${children.map((r) => formatNumber(r.opsPerSec!, 'opsPerSec')).join(', ')} ops/s)`
  return row
}

export async function measureScale(ctx: ScenarioContext): Promise<Row[]> {
  const plan = planOf(ctx.quick)
  const child = { execArgv: ['--expose-gc'], timeoutMs: ctx.quick ? 60_000 : 120_000 }
  // Size by size, lru-cache and tiercache taking turns (lru-cache, tiercache, tiercache, lru-cache),
  // each run in a child of its own: the figures a ratio divides are taken seconds apart, and the
  // order cancels a drift of the machine over the four.
  const rows: Row[] = []
  for (const size of plan.l1.sizes) {
    const args: L1SizesArgs = { ...plan.l1, sizes: [size] }
    ctx.log(`l1-entries ${size.toLocaleString('en-US')}: lru-cache and tiercache in turns, ${plan.l1Children} children each`)
    const runs: Row[][] = [[], []]
    for (let c = 0; c < plan.l1Children; c++) {
      for (const which of c % 2 === 0 ? [0, 1] : [1, 0]) {
        runs[which]!.push(...(await ctx.runInChild('scenarios/scale-l1.ts', which === 0 ? 'lruCacheEntries' : 'tiercacheEntries', args, child)))
      }
    }
    rows.push(...runs.map(meanRow))
  }
  rows.sort((a, b) => Number(b.name === 'lru-cache') - Number(a.name === 'lru-cache'))
  for (const row of rows) {
    const lru = rows.find((other) => other.name === 'lru-cache' && other.entries === row.entries)
    if (row !== lru && lru?.heapBytesPerEntry) row.note = `${row.note}; heap ${(row.heapBytesPerEntry! / lru.heapBytesPerEntry).toFixed(2)}× lru-cache's`
  }
  ctx.log('invalidate')
  rows.push(...(await ctx.runInChild('scenarios/scale-l1.ts', 'tiercacheInvalidate', plan.invalidate, child)))
  rows.push(...(await measureProcesses(plan, ctx)))
  ctx.log('cluster: 3 masters')
  const cluster = await startRedisCluster({ masters: 3 })
  try {
    const args: ClusterArgs = { cluster: cluster.startupNodes }
    rows.push(...(await ctx.runInChild('scenarios/scale-cluster.ts', 'tiercacheClusterHits', args, { timeoutMs: 60_000 })))
  } finally {
    await cluster.stop()
  }
  if (ctx.quick) for (const row of rows) row.note = `${row.note ? `${row.note}; ` : ''}--quick: smaller sizes and fewer processes`
  return rows
}

export const scenario: Scenario = {
  id: 'scale',
  title: 'Scale: L1 size, fleet size, invalidation, cluster',
  measures:
    'L1 hits and heap per entry at 1k/100k/1M resident entries against lru-cache; propagation p50 and idle bus messages per node at 2/4/8 processes, beside the bare SET + PUBLISH floor; family invalidate() at 1k/1M resident; L2 hits at 64 in flight on one node and a 3-master cluster; `pnpm bench --only scale` (--quick: 1k/100k entries, 2/4 processes)',
  columns: ['entries', 'opsPerSec', 'heapBytesPerEntry', 'processes', 'p50Us', 'busMessagesPerNodePerSec', 'residentEntries', 'masters'],
  goal: 'tiercache ≥ 0.9× lru-cache at every size, heap per entry ≤ 1.3× lru-cache; bus messages per node at 8 processes ≤ 1.5× at 2; propagation p50 at 8 ≤ 2× at 2; invalidate() flat in resident entries',
  run: (ctx) => measureScale(ctx),
}
