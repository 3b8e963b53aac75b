// One process of a chaos row: the task service on the shared SQLite file, through the cache on
// the Redis of the row's stage (through the fault proxy, a cluster or Sentinel), with `readers`
// concurrent readers and `writers` concurrent writers from `startAt` to `endAt`, whatever happens
// to Redis meanwhile.
//
// Readers read the status and progress views of the row's tasks (judged afterwards against the
// write history, see judge.ts), list pages and the statistics (errors and latency only). Writers
// each own a share of the tasks (one writer per task: its history is exact) and alternate status
// overrides and final command results, keeping each write's start, acknowledgement and the entity
// values after it: together the writers' logs are the history of every task. Every 50 ms the
// process samples its cache's counters, from which the runner finds when L2 served again after
// the fault. Latency counts the calls begun from the fault on (the warm-up is a cold start);
// errors count from the start. The heap is measured after a forced GC when the fault begins and once the workload
// has stopped.
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { getHeapSpaceStatistics } from 'node:v8'
import { histogramPercentile, newHistogram, record, type Histogram } from '../histogram.js'
import type { ChildContext, Row } from '../scenario.js'
import { seededRandom } from '../zipf.js'
import { NumberLog, now, valueHash, type ReadRecords, type Sample } from './judge.js'

export interface ChaosWorkerArgs {
  readonly worker: number
  readonly processes: number
  /** The task database, shared by every process. */
  readonly filename: string
  readonly resultFile: string
  /** The cache's `redis` option: a URL (through the fault proxy), `{ cluster }` or `{ sentinels, name }`. */
  readonly redis: string | { cluster: { host: string; port: number }[] } | { sentinels: { host: string; port: number }[]; name: string }
  readonly namespace: string
  readonly tasks: readonly string[]
  readonly readers: number
  readonly writers: number
  readonly startAt: number
  readonly faultAt: number
  readonly endAt: number
}

export interface ChaosWorkerResult {
  reads: number
  writes: number
  readErrors: number
  writeErrors: number
  /** Invalid transitions and a busy database: the workload's own, not the cache's. */
  businessErrors: number
  /** Calls still pending when the process stopped (they never answered). */
  hung: number
  unhandled: number
  errorExamples: string[]
  readLatency: Histogram
  writeLatency: Histogram
  /**
   * The writes of this process's tasks, in order, flattened: [entity index, value hash after,
   * started, acknowledged, whether its L2 part was left to the recovery queue (1) or not (0)].
   * Entity `2i` is the status view of task `i` of the row, `2i + 1` its progress view.
   */
  versions: number[]
  /** When this process's recovery queue replayed (its queued deletes landed in L2). */
  replays: number[]
  /** Every read of a judged entity (entities numbered as in `versions`). */
  readLog: ReadRecords
  samples: Sample[]
  heapBefore: number
  /** Written apart (`<resultFile>.heap`), once the records above are let go. */
  heapAfter: number
}

const BUSINESS = new Set(['E_INVALID_TRANSITION', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED'])
const READER_PAUSE_MS = 40
const WRITER_PAUSE_MS = 200
const DRAIN_MS = 10_000
/** How long before the fault the workload is held for the first heap measurement, at most. */
const HOLD_MS = 1_000

/**
 * The heap's live objects after forced GCs, without compiled code: the JIT keeps optimizing hot
 * functions for minutes, and its code (a megabyte or more over a row) is not memory the cache holds.
 */
function gcHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('the chaos worker needs --expose-gc')
  gc()
  gc()
  return getHeapSpaceStatistics()
    .filter((space) => !space.space_name.startsWith('code'))
    .reduce((n, space) => n + space.space_used_size, 0)
}

export async function chaosWorker(args: ChaosWorkerArgs, ctx: ChildContext): Promise<Row[]> {
  const { createRedisCache } = await import('@tiercache/redis')
  const { createCachedTaskService } = await import('@tiercache/task')
  const { createSqliteTaskRepository } = await import('@tiercache/task/sqlite')

  const result: ChaosWorkerResult = {
    reads: 0,
    writes: 0,
    readErrors: 0,
    writeErrors: 0,
    businessErrors: 0,
    hung: 0,
    unhandled: 0,
    errorExamples: [],
    readLatency: newHistogram(),
    writeLatency: newHistogram(),
    versions: [],
    replays: [],
    readLog: [],
    samples: [],
    heapBefore: 0,
    heapAfter: 0,
  }
  process.on('unhandledRejection', (reason) => {
    result.unhandled++
    note(`unhandled rejection: ${String((reason as Error)?.message ?? reason)}`)
  })
  const note = (text: string) => {
    if (result.errorExamples.length < 8 && !result.errorExamples.includes(text)) result.errorExamples.push(text)
  }

  const repo = createSqliteTaskRepository({ filename: args.filename })
  const oracle = createSqliteTaskRepository({ filename: args.filename })

  const cache = createRedisCache({ redis: args.redis, namespace: args.namespace, l1: { maxEntries: 20_000 } })
  const service = createCachedTaskService({ cache, repository: repo, maintenanceInterval: false })
  await cache.ready({ timeout: '10s' }).catch(() => note('the cache was not ready within 10 s'))
  cache.on('recovery-replayed', () => result.replays.push(now()))

  const reads = new NumberLog(4)
  const versions = new NumberLog(5)
  /** Held while the heap is measured at the fault's start: no call in flight then, as at the end. */
  let holding: Promise<void> | undefined
  const random = seededRandom(5000 + args.worker)
  const tasks = args.tasks
  const hostsOf = new Map<string, string[]>()
  for (const id of tasks) hostsOf.set(id, await oracle.getTaskHostIds(id))
  const pending = new Set<number>()
  let calls = 0
  let stopped = false

  const failed = (error: unknown, kind: 'read' | 'write') => {
    const code = (error as { code?: string }).code
    if (code !== undefined && BUSINESS.has(code)) {
      result.businessErrors++
      return
    }
    if (kind === 'read') result.readErrors++
    else result.writeErrors++
    note(`${kind}: ${code ?? ''} ${(error as Error)?.message ?? String(error)}`.trim())
  }

  const reader = async () => {
    while (!stopped) {
      await sleep(random() * READER_PAUSE_MS)
      if (stopped) break
      if (holding !== undefined) await holding
      const task = Math.floor(random() * tasks.length)
      const id = tasks[task] as string
      const roll = random()
      const call = calls++
      pending.add(call)
      const start = now()
      try {
        if (roll < 0.45) {
          const value = await service.getTaskStatus(id)
          reads.add(2 * task, valueHash(value), start, now())
        } else if (roll < 0.8) {
          const value = await service.getTaskProgress(id)
          reads.add(2 * task + 1, valueHash(value), start, now())
        } else if (roll < 0.9) await service.getTasks({ status: 'running' })
        else await service.getTaskStatistics()
        result.reads++
      } catch (error) {
        failed(error, 'read')
      } finally {
        pending.delete(call)
        // Latency from the fault on: the warm-up's cold start is not the fault's.
        if (start >= args.faultAt) record(result.readLatency, (now() - start) * 1000)
      }
    }
  }

  const writer = async (w: number) => {
    // One writer per task across the processes: task i belongs to writer i mod (processes × writers).
    const slots = args.processes * args.writers
    const own = tasks.map((_, i) => i).filter((i) => i % slots === args.worker * args.writers + w)
    if (own.length === 0) return
    let n = 0
    while (!stopped) {
      await sleep(random() * WRITER_PAUSE_MS)
      if (stopped) break
      if (holding !== undefined) await holding
      const task = own[Math.floor(random() * own.length)] as number
      const id = tasks[task] as string
      const hosts = hostsOf.get(id) ?? []
      const call = calls++
      pending.add(call)
      const start = now()
      try {
        n++
        if (n % 2 === 0 || hosts.length === 0) {
          await service.updateTaskStatus(id, (['running', 'success', 'failed'] as const)[n % 3]!)
        } else {
          const host = hosts[n % hosts.length] as string
          await service.recordCommandResult(id, host, { status: n % 4 === 1 ? 'success' : 'failed', exitCode: n % 4 === 1 ? 0 : 1, output: `chaos ${args.worker}.${w}.${n}` })
        }
        result.writes++
      } catch (error) {
        failed(error, 'write')
      } finally {
        pending.delete(call)
        const acked = now()
        // Its L2 deletes may be queued (Redis unreachable): then the replaced value may be read from
        // L2 until the queue replays, which the documented bound counts from.
        const stats = cache.stats()
        const queued = stats.recoveryQueueDepth > 0 || stats.breaker.state !== 'closed' ? 1 : 0
        if (start >= args.faultAt) record(result.writeLatency, (acked - start) * 1000)
        // What the database holds now is this write's result: nobody else writes this task.
        versions.add(2 * task, valueHash(await oracle.getTaskStatusView(id)), start, acked, queued)
        versions.add(2 * task + 1, valueHash(await oracle.getTaskProgressView(id)), start, acked, queued)
      }
    }
  }

  const sampler = setInterval(() => {
    const stats = cache.stats()
    result.samples.push([now(), stats.total.l2Hits, stats.total.l2Errors, stats.breaker.state === 'closed' ? 1 : 0])
  }, 50)

  while (now() < args.startAt) await sleep(5)
  const work = [...Array.from({ length: args.readers }, () => reader()), ...Array.from({ length: args.writers }, (_, w) => writer(w))]
  // The heap at the fault's start, measured as at the end: no call in flight (for at most 1 s).
  await sleep(Math.max(0, args.faultAt - HOLD_MS - now()))
  let release!: () => void
  holding = new Promise<void>((resolve) => (release = resolve))
  while (pending.size > 0 && now() < args.faultAt) await sleep(5)
  result.heapBefore = gcHeap()
  holding = undefined
  release()
  await sleep(Math.max(0, args.faultAt - now()))
  await sleep(Math.max(0, args.endAt - now()))
  stopped = true
  await Promise.race([Promise.all(work), sleep(DRAIN_MS)])
  result.hung = pending.size
  if (result.hung > 0) note(`${result.hung} calls still pending ${DRAIN_MS} ms after the end`)
  clearInterval(sampler)
  result.readLog = reads.toArray()
  result.versions = versions.toArray()
  writeFileSync(args.resultFile, JSON.stringify(result))
  // What this harness recorded is not the cache's memory: the logs are off the heap, and their
  // copies for the file are let go before the heap is measured again.
  result.readLog = []
  result.versions = []
  result.samples = []
  // A turn of the event loop first: the written JSON must not be on any stack.
  await sleep(50)
  const heapAfter = gcHeap()
  writeFileSync(`${args.resultFile}.heap`, JSON.stringify({ heapBefore: result.heapBefore, heapAfter }))
  const closing = Promise.allSettled([service.close(), cache.close()])
  if ((await Promise.race([closing.then(() => true), sleep(5_000).then(() => false)])) === false) ctx.log(`worker ${args.worker}: close() did not finish within 5 s`)
  await repo.close()
  await oracle.close()
  const p99 = histogramPercentile(result.readLatency, 99)
  return [{ name: `worker ${args.worker}`, variant: `${result.reads} reads, p99 ${p99 === undefined ? '-' : Math.round(p99 / 1000)} ms` }]
}
