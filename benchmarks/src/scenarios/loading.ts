// loading: the loading policies of @tiercache/core under expiry, on 4 processes sharing one Redis
// (a private redis-server; each process a createRedisCache: store + bus on one connection), a
// loader that simulates a database query (a 2–5 ms timer, counted). Run alone:
// `pnpm bench --only loading` (benchmarks/README.md describes the rows and how to read them).
//
// Zipf rows: reads of 10,000 keys (Zipf, s = 1, a seed per process) at 2,500 reads/s per process
// in an open loop, through a family's getOrSet. Three policies, each a phase of its own in a
// namespace of its own (cold at its start):
//   `fixed ttl`    ttl 2 s (quick: 500 ms)
//   `eagerRefresh` the same, eagerRefresh: 0.8 (a cache option)
//   `adaptiveTtl`  the family's adaptiveTtl { min: ttl / 4, max: ttl × 2 } in place of the ttl
// Jitter is the default (0.1). Each phase warms up for one adaptiveTtl max (2 × ttl) and measures
// for 3 × ttl: hit rate (the formula of stats().total.hitRate on the counters' deltas, summed over
// the processes), loader calls/s, L2 reads/s (entries asked of Redis through the store's get and
// getMany, counted by a wrapper; stats' l2Hits + misses is in the note) and the latency of every
// read (a log histogram per process, merged: p50/p99/max across the processes).
//
// Hot-key rows: one key, ttl 200 ms, fixed against eagerRefresh 0.8. `hot key`: 4 readers per
// process read it back to back (yielding to the event loop every 32 reads, else an L1 hit never
// lets Redis replies in); `hot key, paced`: 20,000 reads/s per process in an open loop, which
// leaves the machine idle CPU so that a wait at expiry is not lost in the OS scheduling of 4 busy
// processes on 2 cores. With eager refresh no reader should wait for the loader at expiry.
//
// A barrier in Redis starts each phase on the four processes at once; the phases run in the
// order above. The harness's ratio is loader calls/s over the group's fixed-ttl row; the
// eagerRefresh hot-key notes give p99 and max over the fixed-ttl row's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
import { formatRatio } from '../format.js'
import { histogramPercentile, mergeHistograms, newHistogram, record, slowerThan, type Histogram } from '../histogram.js'
import type { ChildContext, Row, Scenario } from '../scenario.js'

const PROCESSES = 4
const KEYS = 10_000
const ZIPF_S = 1
/** Reads of one process pending at once at most, in the paced (open-loop) rows. */
const MAX_IN_FLIGHT = 256
/** Offered reads per second per process in the Zipf rows. */
const ZIPF_RATE = 2_500
const HOT_READERS = 4
const HOT_YIELD_EVERY = 32
/** Offered reads per second per process in the paced hot-key rows. */
const HOT_PACED_RATE = 20_000
const HOT_TTL_MS = 200
const EAGER = 0.8
const LOADER_MIN_MS = 2
const LOADER_SPREAD_MS = 3
/** From the last process reaching a phase's barrier to the phase's start. */
const START_DELAY_MS = 150
/** Budget per phase beyond its windows: closing a cache, connecting the next, the barrier. */
const PHASE_OVERHEAD_MS = 500
const LOOP_RESOLUTION_MS = 10

type Policy = 'fixed' | 'eager' | 'adaptive'

export interface Phase {
  variant: string
  group: string
  kind: 'zipf' | 'hot'
  policy: Policy
  /** Offered reads per second per process (an open loop); absent: back to back. */
  rate?: number
  /** Back to back: readers per process. */
  readers?: number
  ttlMs: number
  warmupMs: number
  measureMs: number
  /** false: a throwaway phase (the JIT and connections warm, not the keys), not a row. */
  report?: boolean
}

/** The Zipf rows' ttl; adaptiveTtl spans ttl / 4 .. ttl × 2. */
export const zipfTtlMs = (quick: boolean) => (quick ? 500 : 2_000)

export function phasesOf(quick: boolean): Phase[] {
  const ttlMs = zipfTtlMs(quick)
  // Warm-up: one max TTL of adaptiveTtl, so that its hot keys have been loaded with their long TTL.
  const zipf = { group: 'zipf', kind: 'zipf', rate: ZIPF_RATE, ttlMs, warmupMs: 2 * ttlMs, measureMs: 3 * ttlMs } as const
  const hot = { kind: 'hot', readers: HOT_READERS, ttlMs: HOT_TTL_MS, warmupMs: 2 * HOT_TTL_MS, measureMs: quick ? 1_200 : 3_000 } as const
  const paced = { ...hot, group: 'hot key, paced', rate: HOT_PACED_RATE } as const
  return [
    // Whatever runs first runs on cold code: that must not be the baseline row.
    { ...zipf, variant: 'warm-up', policy: 'fixed', warmupMs: 0, measureMs: quick ? 500 : 1_000, report: false },
    { ...zipf, variant: 'fixed ttl', policy: 'fixed' },
    { ...zipf, variant: 'eagerRefresh', policy: 'eager' },
    { ...zipf, variant: 'adaptiveTtl', policy: 'adaptive' },
    { ...hot, group: 'hot key', variant: 'hot key, fixed ttl', policy: 'fixed' },
    { ...hot, group: 'hot key', variant: 'hot key, eagerRefresh', policy: 'eager' },
    { ...paced, variant: `hot key, ${HOT_PACED_RATE / 1000}k/s, fixed ttl`, policy: 'fixed' },
    { ...paced, variant: `hot key, ${HOT_PACED_RATE / 1000}k/s, eagerRefresh`, policy: 'eager' },
  ]
}

// ---------------------------------------------------------------------------------------------
// One worker process.

interface WorkerArgs {
  worker: number
  namespace: string
  phases: Phase[]
  resultFile: string
}

interface Counted {
  l1Hits: number
  l2Hits: number
  misses: number
  loaderCalls: number
  staleServed: number
  refreshes: number
  leaseWaits: number
  loaderErrors: number
  l2Errors: number
  breakerTransitions: number
  l1Flushes: number
  busMessagesApplied: number
  /** Entries asked of Redis (store get/getMany). */
  l2Reads: number
}

export interface PhaseResult {
  reads: number
  errors: number
  /** Reads the open loop did not start: more than MAX_IN_FLIGHT were pending, or it fell 50 ms behind. */
  droppedReads: number
  elapsedMs: number
  /** How late this process began the phase (it runs on a common schedule). */
  lateMs: number
  counted: Counted
  histogram: Histogram
  /** This process's event-loop delay in the window (perf_hooks, sampled every 10 ms), beyond the timer's interval. */
  loopDelay: { p99Ms: number; maxMs: number }
  /** The whole phase's leases granted to this process and fills it made with one (warm-up and closing included). */
  leases: { granted: number; filled: number }
}

const now = () => performance.timeOrigin + performance.now()

/** Redis calls of the barrier (a plain client of its own, not the cache's). */
interface Barrier {
  /** Resolves the common start time of phase `index`, set by the last process to arrive. */
  arrive(index: number): Promise<number>
  close(): void
}

async function barrier(args: WorkerArgs, ctx: ChildContext): Promise<Barrier> {
  const { Redis } = await import('ioredis')
  const redis = new Redis({ host: ctx.redis.host, port: ctx.redis.port, maxRetriesPerRequest: 2 })
  return {
    async arrive(index) {
      const key = `${args.namespace}:barrier:${index}`
      const arrived = await redis.incr(key)
      if (arrived === PROCESSES) await redis.set(`${key}:start`, String(now() + START_DELAY_MS), 'EX', 600)
      const deadline = now() + 60_000
      for (;;) {
        const at = await redis.get(`${key}:start`)
        if (at !== null) return Number(at)
        if (now() > deadline) throw new Error(`loading: only ${await redis.get(key)} of ${PROCESSES} processes reached phase ${index} within 60 s`)
        await sleep(5)
      }
    },
    close: () => redis.disconnect(),
  }
}

export async function loadingWorker(args: WorkerArgs, ctx: ChildContext): Promise<Row[]> {
  const { createRedisCache } = await import('@tiercache/redis')
  const { zipf, seededRandom } = await import('../zipf.js')
  const { writeFileSync } = await import('node:fs')
  const value = ctx.fixtures.taskStatus
  const results: PhaseResult[] = []
  const sync = await barrier(args, ctx)
  for (const [index, phase] of args.phases.entries()) {
    const cache = createRedisCache({
      redis: { host: ctx.redis.host, port: ctx.redis.port },
      namespace: `${args.namespace}-p${index}`,
      // 2 shared cores, 4 processes and Redis: the default 50 ms would open the breaker.
      l2Timeout: '1s',
      ...(phase.policy === 'eager' ? { eagerRefresh: EAGER } : {}),
    })
    // Count the entries read from Redis: the engine calls the store's methods at call time.
    let l2Reads = 0
    const store = cache.store
    const get = store.get.bind(store)
    const getMany = store.getMany.bind(store)
    store.get = (key) => {
      l2Reads++
      return get(key)
    }
    store.getMany = (keys) => {
      l2Reads += keys.length
      return getMany(keys)
    }
    // Leases granted and fills made with them: a lease granted and never filled (nor released)
    // keeps the other processes waiting for it (lease.waitTimeout).
    let leasesGranted = 0
    let leaseFills = 0
    const acquireLease = store.acquireLease.bind(store)
    const fillWithLease = store.fillWithLease.bind(store)
    store.acquireLease = async (key, ttl) => {
      const grant = await acquireLease(key, ttl)
      if (grant.granted) leasesGranted++
      return grant
    }
    store.fillWithLease = (key, token, entry) => {
      leaseFills++
      return fillWithLease(key, token, entry)
    }
    let loaderCalls = 0
    const loader = async () => {
      loaderCalls++
      await sleep(LOADER_MIN_MS + LOADER_SPREAD_MS * Math.random())
      return value
    }
    const family = cache.family<string, typeof value>({
      name: 'item',
      key: (id) => id,
      ...(phase.policy === 'adaptive' ? { adaptiveTtl: { min: phase.ttlMs / 4, max: phase.ttlMs * 2 } } : { ttl: phase.ttlMs }),
    })
    const ready = await cache.ready()
    if (!ready.l2 || !ready.bus) throw new Error(`loading: cache not ready (l2 ${ready.l2}, bus ${ready.bus})`)
    // Every process starts the phase together, its cache connected.
    const phaseStart = await sync.arrive(index)
    const lateMs = Math.max(0, now() - phaseStart)
    if (lateMs === 0) await sleep(phaseStart - now())
    const delay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
    const t0 = now()
    const measureAt = t0 + phase.warmupMs
    const endAt = measureAt + phase.measureMs
    const histogram = newHistogram()
    let reads = 0
    let errors = 0
    let droppedReads = 0
    let snapshot: (Counted & { at: number }) | undefined
    /** Taken when the window closes (before the reads still in flight are awaited: a slow one must not stretch it). */
    let closing: (Counted & { at: number }) | undefined
    const take = (): Counted & { at: number } => {
      const stats = cache.stats()
      const t = stats.total
      return {
        at: now(),
        l1Hits: t.l1Hits,
        l2Hits: t.l2Hits,
        misses: t.misses,
        loaderCalls,
        staleServed: t.staleServed,
        refreshes: t.refreshes,
        leaseWaits: t.leaseWaits,
        loaderErrors: t.loaderErrors,
        l2Errors: t.l2Errors,
        breakerTransitions: stats.breaker.transitions,
        l1Flushes: stats.l1Flushes,
        busMessagesApplied: stats.busMessagesApplied,
        l2Reads,
      }
    }
    const snapshotTimer = setTimeout(() => {
      snapshot = take()
      delay.enable()
    }, Math.max(0, measureAt - now()))
    const one = async (key: string) => {
      const s = now()
      try {
        await family.getOrSet(key, loader)
      } catch {
        errors++
      }
      if (s >= measureAt) {
        record(histogram, (now() - s) * 1000)
        reads++
      }
    }
    const next = phase.kind === 'zipf' ? zipf(KEYS, ZIPF_S, seededRandom(1_000 * index + args.worker + 1)) : () => -1
    const keyOf = phase.kind === 'zipf' ? () => `k${next()}` : () => 'hot'
    const rate = phase.rate
    if (rate !== undefined) {
      // Open loop: every millisecond the reads due by then start, without waiting for the ones
      // in flight (at most MAX_IN_FLIGHT; a backlog beyond 50 ms of reads is dropped, not caught
      // up in a burst). A slow read then delays no other, and one timer paces them all.
      let issued = 0
      let inFlight = 0
      let dropped = 0
      let drained: (() => void) | undefined
      const done = () => {
        inFlight--
        if (inFlight === 0) drained?.()
      }
      for (let t = now(); t < endAt; t = now()) {
        const due = (rate * (t - t0)) / 1000
        if (issued < due - rate / 20) {
          if (t >= measureAt) dropped += Math.floor(due - rate / 20) - issued
          issued = Math.floor(due - rate / 20)
        }
        while (issued < due && inFlight < MAX_IN_FLIGHT) {
          issued++
          inFlight++
          void one(keyOf()).then(done)
        }
        await sleep(1)
      }
      closing = take()
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve))
      droppedReads = dropped
    } else {
      // Back to back: each reader awaits its read and starts the next; an L1 hit never yields,
      // so every HOT_YIELD_EVERY reads it lets Redis replies and timers in.
      const reader = async () => {
        for (let n = 1; now() < endAt; n++) {
          await one(keyOf())
          if (n % HOT_YIELD_EVERY === 0) await yieldToLoop()
        }
      }
      await Promise.all(Array.from({ length: phase.readers ?? 1 }, reader))
    }
    clearTimeout(snapshotTimer)
    delay.disable()
    const end = closing ?? take()
    const from = snapshot ?? end
    const counted = Object.fromEntries(Object.keys(end).filter((k) => k !== 'at').map((k) => [k, end[k as keyof Counted] - from[k as keyof Counted]])) as unknown as Counted
    // The histogram holds each 10 ms timer's whole interval: the delay is what exceeds it.
    const lag = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS)
    const loopDelay = delay.count > 0 ? { p99Ms: lag(delay.percentile(99)), maxMs: lag(delay.max) } : { p99Ms: 0, maxMs: 0 }
    await cache.close()
    results.push({ reads, errors, droppedReads, elapsedMs: end.at - from.at, lateMs, counted, histogram, loopDelay, leases: { granted: leasesGranted, filled: leaseFills } })
  }
  sync.close()
  writeFileSync(args.resultFile, JSON.stringify(results))
  return [{ name: 'worker', variant: String(args.worker) }]
}

// ---------------------------------------------------------------------------------------------
// The rows.

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x >= 10 ? 1 : 2))

export function rowsOf(phases: readonly Phase[], perProcess: readonly PhaseResult[][]): Row[] {
  const rows: Row[] = []
  const fixedHot: { p99Us?: number; maxUs?: number } = {}
  for (const [index, phase] of phases.entries()) {
    if (phase.report === false) continue
    const results = perProcess.map((r) => r[index]!)
    const sum = (f: (r: PhaseResult) => number) => results.reduce((a, r) => a + f(r), 0)
    // Each process measures on its own clock; their windows are the same length give or take a timer.
    const seconds = sum((r) => r.elapsedMs) / results.length / 1000
    const c = (k: keyof Counted) => sum((r) => r.counted[k])
    const lookups = c('l1Hits') + c('l2Hits') + c('misses')
    const h = mergeHistograms(results.map((r) => r.histogram))
    const p99Us = histogramPercentile(h, 99)
    const maxUs = h.maxUs
    const notes: string[] = []
    if (phase.kind === 'zipf') {
      notes.push(`stats l2Hits+misses ${fmt((c('l2Hits') + c('misses')) / seconds)}/s`)
    }
    const slow = slowerThan(h, 1_000)
    if (slow > 0) notes.push(`reads > 1 ms ${fmt(slow / seconds)}/s`)
    if (c('refreshes') > 0) notes.push(`refreshes ${fmt(c('refreshes') / seconds)}/s`)
    if (c('leaseWaits') > 0) notes.push(`lease waits ${fmt(c('leaseWaits') / seconds)}/s`)
    if (c('staleServed') > 0) notes.push(`stale served ${c('staleServed')}`)
    if (phase.kind === 'hot') {
      if (phase.policy === 'fixed') Object.assign(fixedHot, { p99Us, maxUs })
      else if (fixedHot.p99Us && fixedHot.maxUs && p99Us !== undefined) {
        notes.push(`p99 ${formatRatio(p99Us / fixedHot.p99Us)}, max ${formatRatio(maxUs / fixedHot.maxUs)} of fixed ttl`)
      }
    }
    const errors = sum((r) => r.errors) + c('loaderErrors')
    if (errors > 0) notes.push(`${errors} errors`)
    notes.push(`event-loop delay p99 ${fmt(Math.max(...results.map((r) => r.loopDelay.p99Ms)))} ms, max ${fmt(Math.max(...results.map((r) => r.loopDelay.maxMs)))} ms`)
    const overSecond = slowerThan(h, 1_000_000)
    if (overSecond > 0) notes.push(`${overSecond} reads > 1 s`)
    if (c('l2Errors') > 0) notes.push(`${c('l2Errors')} L2 errors`)
    const unfilled = sum((r) => r.leases.granted - r.leases.filled)
    if (unfilled > 0) notes.push(`${unfilled} leases granted and never filled (of ${sum((r) => r.leases.granted)})`)
    if (c('l1Flushes') > 0) notes.push(`${c('l1Flushes')} L1 flushes`)
    if (c('busMessagesApplied') > 0) notes.push(`${c('busMessagesApplied')} bus messages applied`)
    if (c('breakerTransitions') > 0) notes.push(`breaker moved ${c('breakerTransitions')} times`)
    const dropped = sum((r) => r.droppedReads)
    if (dropped > 0) notes.push(`${dropped} reads not started (behind the rate)`)
    const late = Math.max(...results.map((r) => r.lateMs))
    if (late > 50) notes.push(`a process began ${Math.round(late)} ms late`)
    rows.push({
      name: 'tiercache',
      variant: phase.variant,
      group: phase.group,
      ...(phase.policy === 'fixed' ? { baseline: true } : {}),
      opsPerSec: sum((r) => r.reads) / seconds,
      hitRatePct: lookups === 0 ? undefined : (100 * (c('l1Hits') + c('l2Hits'))) / lookups,
      loaderCallsPerSec: c('loaderCalls') / seconds,
      l2ReadsPerSec: c('l2Reads') / seconds,
      p50Us: histogramPercentile(h, 50),
      p99Us,
      maxUs,
      ...(notes.length ? { note: notes.join('; ') } : {}),
    })
  }
  return rows
}

export const scenario: Scenario = {
  id: 'loading',
  title: 'Loading policies under expiry: fixed TTL, eager refresh, adaptive TTL',
  measures:
    `4 processes on one Redis, a 2–5 ms loader: Zipf reads (s = 1) of ${KEYS.toLocaleString('en')} keys at ${ZIPF_RATE.toLocaleString('en')}/s per process (open loop) with a fixed 2 s ttl, eagerRefresh ${EAGER}, and adaptiveTtl { 500 ms, 4 s } (quick: ttl 500 ms, adaptiveTtl { 125 ms, 1 s }): hit rate, loader calls/s, L2 reads/s, latency; one hot key with a ${HOT_TTL_MS} ms ttl read back to back and at ${HOT_PACED_RATE.toLocaleString('en')}/s per process, fixed ttl vs eagerRefresh: p99/max. Ratio: loader calls/s over the group's fixed-ttl row. Run alone: \`pnpm bench --only loading\`.`,
  ratioOf: 'loaderCallsPerSec',
  columns: ['opsPerSec', 'hitRatePct', 'loaderCallsPerSec', 'l2ReadsPerSec', 'p50Us', 'p99Us', 'maxUs'],
  goal: 'eagerRefresh and adaptiveTtl: hit rate ≥ fixed ttl; hot key with eagerRefresh: max latency well below fixed ttl (no reader waits for the loader)',
  async run(ctx) {
    const phases = phasesOf(ctx.quick)
    const server = await ctx.startRedis()
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-loading-'))
    try {
      const namespace = `${ctx.keyPrefix.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/-+$/, '')}-${process.pid}`
      const totalMs = phases.reduce((a, p) => a + p.warmupMs + p.measureMs + PHASE_OVERHEAD_MS, 0)
      ctx.log(`${PROCESSES} processes × ${phases.length} phases (${(totalMs / 1000).toFixed(1)} s on the schedule) …`)
      const files = Array.from({ length: PROCESSES }, (_, worker) => join(dir, `worker-${worker}.json`))
      await Promise.all(
        files.map((resultFile, worker) =>
          ctx.runInChild('scenarios/loading.ts', 'loadingWorker', { worker, namespace, phases, resultFile } satisfies WorkerArgs, {
            redis: { host: server.host, port: server.port, url: server.url },
            timeoutMs: totalMs + 90_000,
          }),
        ),
      )
      return rowsOf(phases, files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as PhaseResult[]))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}
