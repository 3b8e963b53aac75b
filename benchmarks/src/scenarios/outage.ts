// Redis outages under load: 50 concurrent readers on a cache-backed loader while Redis is
// killed and restarted on the same port, paused (SIGSTOP/SIGCONT), or killed for good.
//
// Each subject (library + setting) runs in its own child, which owns its redis-servers (the
// testkit's watchdog kills them if the child dies) and injects the faults itself, so phase
// boundaries are exact. Every phase is bounded: readers stop issuing calls at the end, calls
// still pending a second later are counted as slow (they may never return), and the child is
// killed by the harness after its deadline whatever the subject does.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { percentile } from '../measure.js'
import { OUTAGE_SUBJECTS, type OutageSubject } from '../peers/outage.js'
import type { ChildContext, Row, Scenario, ScenarioContext } from '../scenario.js'
import { seededRandom, zipf } from '../zipf.js'

const READERS = 50
const KEYS = 2000
const LOADER_MS = 2
const SLOW_MS = 1000
const DRAIN_MS = 1000

export type FaultKind = 'kill' | 'pause' | 'never'

interface Timing {
  beforeMs: number
  faultMs: number
  afterMs: number
}

export const timingOf = (quick: boolean): Timing => (quick ? { beforeMs: 300, faultMs: 1500, afterMs: 1500 } : { beforeMs: 3000, faultMs: 7000, afterMs: 5000 })

const groupOf = (kind: FaultKind, timing: Timing) => {
  const s = `${timing.faultMs / 1000} s`
  if (kind === 'kill') return `killed ${s}, restarted`
  if (kind === 'pause') return `paused ${s}`
  return 'killed, never back'
}

interface PhaseStats {
  latenciesUs: number[]
}

/** Runs one fault against one subject; resolves a row (figures + notes). */
async function runFault(kind: FaultKind, subject: { name: string; variant: string; create: (r: ChildContext['redis'], p: string) => Promise<OutageSubject> }, ctx: ChildContext): Promise<Row> {
  const { startRedis, sendCommand } = await import('@tiercache/testkit')
  const timing = timingOf(ctx.quick)
  const server = await startRedis()
  const row: Row = { name: subject.name, variant: subject.variant, group: groupOf(kind, timing) }
  const notes: string[] = []
  let cache: OutageSubject | undefined
  try {
    cache = await withTimeout(subject.create({ host: server.host, port: server.port, url: server.url }, `${ctx.keyPrefix}${kind}:`), 5000, 'creating the cache')
    const value = ctx.fixtures.taskStatus
    const load = async () => {
      await sleep(LOADER_MS)
      return value
    }
    const phases: Record<'before' | 'during' | 'after', PhaseStats> = { before: { latenciesUs: [] }, during: { latenciesUs: [] }, after: { latenciesUs: [] } }
    let faultAt = Infinity
    let returnAt = Infinity
    let stopped = false
    let errors = 0
    let slow = 0
    // Start time of every call in flight, by call number.
    const pending = new Map<number, number>()
    let calls = 0
    const next = zipf(KEYS, 1, seededRandom(7))
    // A call belongs to the fault phase when it overlaps it: a call that started before the
    // fault and stayed blocked through it is an outage call, not a 'before' one.
    const phaseOf = (start: number, end: number) => (end < faultAt ? 'before' : start < returnAt ? 'during' : 'after')
    const reader = async () => {
      while (!stopped) {
        const key = `k${next()}`
        const start = performance.now()
        const id = calls++
        pending.set(id, start)
        try {
          await cache!.read(key, load)
        } catch {
          errors++
        }
        pending.delete(id)
        const end = performance.now()
        const us = (end - start) * 1000
        if (us > SLOW_MS * 1000) slow++
        phases[phaseOf(start, end)].latenciesUs.push(us)
        // A subject that fails synchronously-fast must not starve the event loop.
        if (us < 50) await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
    const readers = Array.from({ length: READERS }, () => reader())

    await sleep(timing.beforeMs)
    faultAt = performance.now()
    if (kind === 'pause') server.pause()
    else await server.kill()
    await sleep(timing.faultMs)
    let recoveryMs: number | undefined
    let polling: Promise<void> = Promise.resolve()
    if (kind !== 'never') {
      if (kind === 'pause') server.resume()
      else await server.restart()
      returnAt = performance.now()
      // L2 serves again when the server sees key reads from the subject. After SIGCONT the
      // server first runs what it had buffered, so the first sample is a starting point only.
      polling = (async () => {
        let last: number | undefined
        while (!stopped) {
          const info = await sendCommand(server.port, ['INFO', 'stats'], { timeoutMs: 500 }).catch(() => '')
          const reads = Number(/keyspace_hits:(\d+)/.exec(info)?.[1] ?? NaN) + Number(/keyspace_misses:(\d+)/.exec(info)?.[1] ?? NaN)
          if (Number.isFinite(reads)) {
            if (last !== undefined && reads > last && recoveryMs === undefined) {
              recoveryMs = performance.now() - returnAt
              return
            }
            if (kind === 'kill' && reads > 0 && recoveryMs === undefined) {
              recoveryMs = performance.now() - returnAt
              return
            }
            last = reads
          }
          await sleep(20)
        }
      })()
    }
    await sleep(timing.afterMs)
    stopped = true
    await polling
    const drained = await Promise.race([Promise.all(readers).then(() => true), sleep(DRAIN_MS).then(() => false)])
    const now = performance.now()
    const stuck = [...pending.values()].filter((start) => now - start > SLOW_MS).length
    if (!drained) notes.push(`${pending.size} calls still pending ${DRAIN_MS} ms after the end`)
    const p99 = (xs: number[]) => percentile(xs, 99)
    // A loop, not Math.max(...xs): a fail-fast subject makes more calls than the stack holds arguments.
    const max = (xs: number[]) => (xs.length ? xs.reduce((a, b) => (b > a ? b : a), -Infinity) : undefined)
    // A call still pending is at least as slow as its age: count it in the phase's max.
    const ages = [...pending.values()].map((start) => ({ phase: phaseOf(start, now), us: (now - start) * 1000 }))
    const withPending = (phase: 'during' | 'after') => [...phases[phase].latenciesUs, ...ages.filter((a) => a.phase === phase).map((a) => a.us)]
    Object.assign(row, {
      p99BeforeUs: p99(phases.before.latenciesUs),
      p99Us: p99(withPending('during')),
      maxUs: max(withPending('during')),
      p99AfterUs: p99(withPending('after')),
      maxAfterUs: max(withPending('after')),
      errors,
      slowCalls: slow + stuck,
      ...(recoveryMs !== undefined ? { recoveryMs } : {}),
    })
    if (kind !== 'never' && recoveryMs === undefined) notes.push(`did not use Redis again within ${timing.afterMs} ms`)
    notes.push(`${calls} calls`)
  } catch (error) {
    notes.push(`failed: ${(error as Error).message.split('\n')[0]}`)
  } finally {
    if (cache) await withTimeout(cache.close(), 1000, 'close').catch(() => notes.push('close() hung'))
    await server.stop()
  }
  row.note = notes.join('; ')
  return row
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export const FAULTS: readonly FaultKind[] = ['kill', 'pause', 'never']

/** Child entry: one fault against one subject of OUTAGE_SUBJECTS (a fresh process per fault). */
export async function outageRow(args: { subject: string; fault: FaultKind }, ctx: ChildContext): Promise<Row[]> {
  const subject = OUTAGE_SUBJECTS[args.subject]
  if (!subject) throw new Error(`unknown outage subject ${args.subject}`)
  return [await runFault(args.fault, subject, ctx)]
}

/** The baseline of every group: the loader alone, 50 readers, no cache and no Redis. */
async function loaderOnlyRow(ctx: ScenarioContext): Promise<Row> {
  const latencies: number[] = []
  let stopped = false
  const reader = async () => {
    while (!stopped) {
      const start = performance.now()
      await sleep(LOADER_MS)
      latencies.push((performance.now() - start) * 1000)
    }
  }
  const readers = Array.from({ length: READERS }, () => reader())
  await sleep(ctx.quick ? 500 : 2000)
  stopped = true
  await Promise.all(readers)
  return { name: 'loader', variant: `no cache (${LOADER_MS} ms loader)`, baseline: true, p99Us: percentile(latencies, 99), maxUs: latencies.reduce((a, b) => (b > a ? b : a), 0), errors: 0, slowCalls: 0 }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

export const scenario: Scenario = {
  id: 'outage',
  title: 'Redis outage under load',
  measures:
    '50 concurrent readers on a cache-backed loader (2,000 Zipf keys, L1 of 200) while Redis is killed and restarted on the same port, paused (SIGSTOP/SIGCONT), or killed for good: errors surfaced to callers, calls over 1 s, p99/max latency before, during and after, and the time until Redis is used again; and, through the same faults, 10 concurrent writers of task writes (createCachedTaskService on SQLite): errors, p99/max of the writes during the fault, stale reads after recovery. Run alone: `pnpm bench --only outage`.',
  ratioOf: 'maxUs',
  columns: ['errors', 'slowCalls', 'p99BeforeUs', 'p99Us', 'maxUs', 'p99AfterUs', 'maxAfterUs', 'recoveryMs', 'staleReads'],
  goal: '0 errors; no call over L2 timeout + loader time (max ≤ 100 ms with a 50 ms L2 timeout); Redis used again ≤ 1 s after it returns; writers: 0 errors, max ≤ l2Timeout + 100 ms, 0 stale reads after. p99/max µs are the fault phase; ratio is max over the loader-only max',
  async run(ctx) {
    const baseline = await loaderOnlyRow(ctx)
    const timing = timingOf(ctx.quick)
    const timeoutMs = 20_000 + timing.beforeMs + timing.faultMs + timing.afterMs + DRAIN_MS
    // --quick is a smoke run that must stay short: the kill/restart fault only, four children at
    // a time (faults are timed inside each child, so phases stay exact; latencies suffer from the
    // shared cores). A full run takes every fault; tiercache's children run alone, whose goal is
    // in milliseconds, and the peers' two at a time: what they show is seconds of blocking on
    // Redis timeouts, which a shared core does not change.
    const faults: readonly FaultKind[] = ctx.quick ? ['kill'] : FAULTS
    const all = faults.flatMap((fault) => Object.keys(OUTAGE_SUBJECTS).map((subject) => ({ fault, subject })))
    const alone = (job: (typeof all)[number]) => OUTAGE_SUBJECTS[job.subject]!.name === 'tiercache'
    const batches = ctx.quick
      ? chunks(all, 4)
      : [...all.filter(alone).map((job) => [job]), ...chunks(all.filter((job) => !alone(job)), 2)]
    const runOne = async ({ fault, subject }: (typeof all)[number]): Promise<Row[]> => {
      const { name, variant } = OUTAGE_SUBJECTS[subject]!
      ctx.log(`${name} (${variant}): ${fault}`)
      try {
        return await ctx.runInChild('scenarios/outage.ts', 'outageRow', { subject, fault }, { timeoutMs })
      } catch (error) {
        return [{ name, variant, group: groupOf(fault, timing), note: `failed: ${(error as Error).message.split('\n')[0]}` }]
      }
    }
    const runWriters = async (fault: FaultKind): Promise<Row[]> => {
      ctx.log(`tiercache writers: ${fault}`)
      const group = groupOf(fault, timing)
      try {
        return await ctx.runInChild('scenarios/outage-writers.ts', 'outageWriterRow', { fault, group }, { timeoutMs: timeoutMs + 30_000 })
      } catch (error) {
        return [{ name: 'tiercache', variant: 'createCachedTaskService writers', group, note: `failed: ${(error as Error).message.split('\n')[0]}` }]
      }
    }
    const rows: Row[] = []
    for (const batch of batches) rows.push(...(await Promise.all(batch.map(runOne))).flat())
    for (const fault of faults) rows.push(...(await runWriters(fault)))
    const groups = [...new Set(rows.map((row) => row.group).filter((g): g is string => Boolean(g)))]
    return groups.flatMap((group) => [{ ...baseline, group }, ...rows.filter((row) => row.group === group)])
  },
}
