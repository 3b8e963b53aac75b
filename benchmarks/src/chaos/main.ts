// `pnpm chaos [--quick] [--only <fault>[,<fault>…]]`: readers and writers of several processes
// through every kind of Redis fault, judged for errors, wrong values and stale reads.
//
// One SQLite task database (10,000 tasks, 400 running: the row's tasks), and the Redis of each
// fault's stage (faults.ts): one redis-server reached by every process through the testkit's
// fault proxy, or, for the failovers, a fresh cluster with replicas or Sentinel setup per row.
// Per fault, 4 fresh processes (a namespace of their own) run 100 readers and 10 writers each
// (worker.ts): healthy for a warm-up, then the fault for 60 s (quick: 10 s), then healthy again
// while L2 comes back. The runner puts the fault on and takes it off (a failover heals itself: a
// replica is promoted), then judges the row from what the processes recorded:
// - errors: calls that failed or were still unanswered 10 s after the end, and unhandled rejections (the workload's own
//   business errors, an invalid transition or a busy database, are counted apart);
// - wrong values and stale reads beyond the bound, against the writers' history (judge.ts). The
//   bound is the documented one for a bus in trouble, the L1 cap while unhealthy (1 s) plus the
//   heartbeat deadline (1 s), with 1 s of slack for timers late on a starved machine, counted from
//   the write's acknowledgement, or, for a write made while its process could not reach Redis
//   (its L2 deletes queued), from the replay of its process's recovery queue;
// - recovery: from the heal (a failover: the promotion) until every process's L2 answered reads
//   again without errors and its breaker is closed (its counters, sampled every 50 ms);
// - heap growth of each process from the start of the fault to the end (after forced GCs).
// Writes benchmarks/results/chaos.json and chaos.md (the table of docs/failure-modes.md); exits
// 1 when a row misses its goal.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startFaultProxy, startRedis, taskFixtures } from '@tiercache/testkit'
import { childPool } from '../child.js'
import { FlagsError, parseFlags } from '../flags.js'
import { textTable } from '../format.js'
import { histogramPercentile, mergeHistograms } from '../histogram.js'
import { collectMeta } from '../meta.js'
import { FAULTS, FAULT_IDS, connectionOf, startStage, stopStage, type Fault, type Stage } from './faults.js'
import { judge, now, recoveryOf, valueHash, type Version } from './judge.js'
import type { ChaosWorkerArgs, ChaosWorkerResult } from './worker.js'

const BENCH_ROOT = fileURLToPath(new URL('../..', import.meta.url))
const REPO_ROOT = resolve(BENCH_ROOT, '..')
const RESULTS_DIR = join(BENCH_ROOT, 'results')

const PROCESSES = 4
const READERS = 100
const WRITERS = 10
const TASKS = 400
/** The documented bound with a bus in trouble (cap 1 s + heartbeat deadline 1 s), plus 1 s of slack. */
const BOUND_MS = 3_000
const HEAP_GROWTH_MAX_PCT = 20
/** Time the processes have to start before the row begins. */
const BOOT_MS = 4_000

interface Timing {
  warmupMs: number
  faultMs: number
  recoverMs: number
}
const timingOf = (quick: boolean): Timing => (quick ? { warmupMs: 2_000, faultMs: 10_000, recoverMs: 6_000 } : { warmupMs: 5_000, faultMs: 60_000, recoverMs: 10_000 })

export interface ChaosRow {
  fault: string
  label: string
  processes: number
  errors: number
  wrongValues: number
  staleBeyondBound: number
  readP99Ms: number | null
  readMaxMs: number | null
  writeP99Ms: number | null
  writeMaxMs: number | null
  /** null: L2 did not serve again before the row ended. From the heal, or for a failover from the promotion. */
  recoveryMs: number | null
  /** A failover: from the kill to the replica serving in its place. */
  promotionMs: number | null
  heapGrowthPct: number
  reads: number
  writes: number
  readErrors: number
  writeErrors: number
  businessErrors: number
  notes: string[]
}

const until = (at: number) => sleep(Math.max(0, at - now()))
const ms = (us: number | undefined) => (us === undefined ? null : Math.round(us / 100) / 10)

/** Whether a row meets the goal: no errors, wrong values or stale reads beyond the bound, recovered, bounded heap. */
const rowPasses = (row: ChaosRow): boolean =>
  row.errors === 0 && row.wrongValues === 0 && row.staleBeyondBound === 0 && row.recoveryMs !== null && row.heapGrowthPct <= HEAP_GROWTH_MAX_PCT

const CHAOS_USAGE = `usage: pnpm chaos [--quick] [--only <fault>[,<fault>…]]\nfaults: ${FAULT_IDS.join(', ')}`

async function main(): Promise<number> {
  let flags
  try {
    flags = parseFlags(process.argv.slice(2), FAULT_IDS, 'fault')
  } catch (error) {
    if (!(error instanceof FlagsError)) throw error
    console.error(`${error.message}\n${CHAOS_USAGE}`)
    return error.help ? 0 : 2
  }
  const faults = FAULTS.filter((f) => flags.only === undefined || flags.only.includes(f.id))
  const timing = timingOf(flags.quick)
  const meta = collectMeta(REPO_ROOT, flags.quick)
  const started = performance.now()
  console.log(`tiercache chaos${flags.quick ? ' (--quick)' : ''}: ${faults.map((f) => f.id).join(', ')}; ${PROCESSES} processes × ${READERS} readers + ${WRITERS} writers, ${timing.faultMs / 1000} s per fault`)
  console.log(`Node ${meta.node} · ${meta.cpu} · ${meta.machine.cores} cores · ${meta.machine.memoryGiB} GiB`)

  const { createSqliteTaskRepository, seedTasks } = await import('@tiercache/task/sqlite')
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-chaos-'))
  let shared: Stage | undefined
  const pool = childPool()
  const rows: ChaosRow[] = []
  try {
    const filename = join(dir, 'tasks.db')
    const seeded = createSqliteTaskRepository({ filename })
    seedTasks(seeded, { tasks: 10_000, hosts: 200, activeTasks: TASKS, seed: 1 })
    const tasks = (await seeded.listRunningTaskIds(1_000_000)).sort().slice(0, TASKS)
    // Each history opens with the seeded value.
    const history = new Map<string, Version[]>()
    for (const id of tasks) {
      history.set(`status:${id}`, [{ hash: valueHash(await seeded.getTaskStatusView(id)), started: 0, acked: 0 }])
      history.set(`progress:${id}`, [{ hash: valueHash(await seeded.getTaskProgressView(id)), started: 0, acked: 0 }])
    }
    await seeded.close()
    // Entity 2i is the status view of task i, 2i + 1 its progress view (as the workers number them).
    const entities = tasks.flatMap((id) => [`status:${id}`, `progress:${id}`])

    for (const fault of faults) {
      let stage: Stage
      if (fault.stage === 'proxied') {
        if (shared === undefined) {
          const redis = await startRedis()
          shared = { kind: 'proxied', redis, proxy: await startFaultProxy({ target: { host: redis.host, port: redis.port } }) }
        }
        stage = shared
      } else stage = await startStage(fault.stage)
      try {
        rows.push(await runRow(fault, stage, { dir, filename, tasks, entities, history, timing, quick: flags.quick, pool }))
      } finally {
        if (stage !== shared) await stopStage(stage)
      }
    }
  } finally {
    pool.killAll()
    if (shared?.kind === 'proxied') {
      await shared.proxy.stop()
      await shared.redis.stop()
    }
    rmSync(dir, { recursive: true, force: true })
  }
  meta.durationMs = Math.round(performance.now() - started)

  const cells = [
    ['fault', 'errors', 'wrong values', 'stale > bound', 'read p99 ms', 'read max ms', 'write p99 ms', 'write max ms', 'recovery ms', 'promoted after ms', 'heap growth %', 'reads', 'writes', 'business errors'],
    ...rows.map((r) => [r.fault, r.errors, r.wrongValues, r.staleBeyondBound, r.readP99Ms ?? '-', r.readMaxMs ?? '-', r.writeP99Ms ?? '-', r.writeMaxMs ?? '-', r.recoveryMs ?? 'never', r.promotionMs ?? '-', r.heapGrowthPct, r.reads, r.writes, r.businessErrors].map(String)),
  ]
  console.log(`\n${textTable(cells).replace(/^/gm, '  ')}`)
  for (const r of rows) if (r.notes.length > 0) console.log(`  ${r.fault}: ${r.notes.join('; ')}`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, 'chaos.json'), `${JSON.stringify({ meta, boundMs: BOUND_MS, timing, rows }, null, 2)}\n`)
  writeFileSync(join(RESULTS_DIR, 'chaos.md'), markdown(rows, meta.date, `${meta.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB} GiB, Node ${meta.node}`, timing))
  console.log(`\nwrote benchmarks/results/chaos.json and chaos.md (${(meta.durationMs / 1000).toFixed(1)} s)`)
  const failing = rows.filter((r) => !rowPasses(r))
  if (failing.length > 0) console.error(`goal missed: ${failing.map((r) => r.fault).join(', ')} (0 errors, 0 wrong values, 0 stale beyond ${BOUND_MS} ms, L2 back, heap growth ≤ ${HEAP_GROWTH_MAX_PCT} %)`)
  return failing.length > 0 ? 1 : 0
}

interface RowContext {
  dir: string
  filename: string
  entities: string[]
  tasks: string[]
  history: Map<string, Version[]>
  timing: Timing
  quick: boolean
  pool: ReturnType<typeof childPool>
}

/** The endpoint a child's context names (the workers connect by `ChaosWorkerArgs.redis`). */
function endpointOf(stage: Stage): { host: string; port: number; url: string } {
  const node = stage.kind === 'proxied' ? stage.proxy : stage.kind === 'cluster' ? stage.cluster.nodes[0]! : stage.sentinel.primary
  return { host: node.host, port: node.port, url: node.url }
}

async function runRow(fault: Fault, stage: Stage, c: RowContext): Promise<ChaosRow> {
  const { timing } = c
  const startAt = now() + BOOT_MS
  const faultAt = startAt + timing.warmupMs
  const healAt = faultAt + timing.faultMs
  const endAt = healAt + timing.recoverMs
  const namespace = `chaos-${fault.id}-${Date.now().toString(36)}`
  console.log(`${fault.id}: ${fault.label} …`)
  const fixtures = taskFixtures()
  const redis = endpointOf(stage)
  const targets = { stage, namespace }
  const runs = Array.from({ length: PROCESSES }, (_, worker) => {
    const args: ChaosWorkerArgs = {
      worker,
      processes: PROCESSES,
      filename: c.filename,
      resultFile: join(c.dir, `${fault.id}-${worker}.json`),
      redis: connectionOf(stage),
      namespace,
      tasks: c.tasks,
      readers: READERS,
      writers: WRITERS,
      startAt,
      faultAt,
      endAt,
    }
    return c.pool.run('chaos/worker.ts', 'chaosWorker', args, { quick: c.quick, redis, fixtures, timeMs: 0, keyPrefix: namespace }, { timeoutMs: endAt - now() + 60_000, execArgv: ['--expose-gc', '--compact-on-every-full-gc'] }, (m) => console.log(`    ${m}`))
  })
  const settled = Promise.allSettled(runs)
  await until(faultAt)
  await fault.apply(targets)
  const notes: string[] = []
  // A failover heals itself: recovery counts from the promotion, which must come within the fault's time.
  let recoverFrom = healAt
  let promotionMs: number | null = null
  if (fault.promoted !== undefined) {
    try {
      await fault.promoted(targets, healAt - now())
      recoverFrom = now()
      promotionMs = Math.round(recoverFrom - faultAt)
    } catch (error) {
      notes.push((error as Error).message)
    }
  }
  await until(healAt)
  await fault.heal(targets)
  const outcomes = await settled
  const results: ChaosWorkerResult[] = []
  outcomes.forEach((o, worker) => {
    if (o.status === 'rejected') notes.push(`worker ${worker} failed: ${(o.reason as Error)?.message ?? String(o.reason)}`)
    else {
      const file = join(c.dir, `${fault.id}-${worker}.json`)
      const heap = JSON.parse(readFileSync(`${file}.heap`, 'utf8')) as { heapBefore: number; heapAfter: number }
      results.push({ ...(JSON.parse(readFileSync(file, 'utf8')) as ChaosWorkerResult), ...heap })
    }
  })
  // The row's writes extend each task's history (the next rows read on from there).
  // A write whose L2 part was queued replaces the old value in L2 once its process replayed the
  // queue (never, if it did not before the end: the old value is excused, and the note says so).
  let neverReplayed = 0
  for (const r of results) {
    for (let i = 0; i < r.versions.length; i += 5) {
      const [entity, hash, started, acked, queued] = r.versions.slice(i, i + 5) as [number, number, number, number, number]
      const replaced = queued === 1 ? r.replays.find((t) => t >= acked) : acked
      if (replaced === undefined) neverReplayed++
      c.history.get(c.entities[entity] as string)?.push({ hash, started, acked: replaced })
    }
  }
  for (const list of c.history.values()) list.sort((a, b) => a.started - b.started)
  const judged = judge(
    c.history,
    c.entities,
    results.map((r) => r.readLog),
    BOUND_MS,
  )
  if (neverReplayed > 0) notes.push(`${neverReplayed} entity versions written while Redis was unreachable by a process that never replayed its recovery queue before the end: reads of what they replaced are excused`)
  notes.push(...judged.examples)
  const mb = (bytes: number) => Math.round(bytes / 1e5) / 10
  notes.push(`heap MB per process, fault start → end: ${results.map((r) => `${mb(r.heapBefore)} → ${mb(r.heapAfter)}`).join(', ')}`)
  for (const r of results) for (const e of r.errorExamples) if (!notes.includes(e) && notes.length < 12) notes.push(e)
  const reads = mergeHistograms(results.map((r) => r.readLatency))
  const writes = mergeHistograms(results.map((r) => r.writeLatency))
  const sum = (f: (r: ChaosWorkerResult) => number) => results.reduce((n, r) => n + f(r), 0)
  const row: ChaosRow = {
    fault: fault.id,
    label: fault.label,
    processes: results.length,
    errors: sum((r) => r.readErrors + r.writeErrors + r.hung + r.unhandled) + (PROCESSES - results.length),
    wrongValues: judged.wrongValues,
    staleBeyondBound: judged.staleBeyondBound,
    readP99Ms: ms(histogramPercentile(reads, 99)),
    readMaxMs: ms(reads.count === 0 ? undefined : reads.maxUs),
    writeP99Ms: ms(histogramPercentile(writes, 99)),
    writeMaxMs: ms(writes.count === 0 ? undefined : writes.maxUs),
    recoveryMs: results.length === PROCESSES && (fault.promoted === undefined || promotionMs !== null) ? recoveryOf(results.map((r) => r.samples), recoverFrom) : null,
    promotionMs,
    heapGrowthPct: Math.round(Math.max(0, ...results.map((r) => (100 * (r.heapAfter - r.heapBefore)) / r.heapBefore)) * 10) / 10,
    reads: sum((r) => r.reads),
    writes: sum((r) => r.writes),
    readErrors: sum((r) => r.readErrors),
    writeErrors: sum((r) => r.writeErrors),
    businessErrors: sum((r) => r.businessErrors),
    notes,
  }
  const promotion = promotionMs === null ? '' : `, promoted after ${promotionMs} ms`
  console.log(`  ${rowPasses(row) ? 'ok' : 'GOAL MISSED'}: ${row.errors} errors, ${row.wrongValues} wrong, ${row.staleBeyondBound} stale > bound, read p99 ${row.readP99Ms} ms${promotion}, recovery ${row.recoveryMs ?? 'never'} ms, heap ${row.heapGrowthPct} %`)
  return row
}

function markdown(rows: readonly ChaosRow[], date: string, machine: string, timing: Timing): string {
  const lines = [
    `Measured ${date.slice(0, 10)} on ${machine}: ${PROCESSES} processes × ${READERS} readers + ${WRITERS} writers, ${timing.faultMs / 1000} s per fault.`,
    '',
    '| fault | errors | wrong values | stale beyond bound | read p99 / max ms | write p99 / max ms | L2 back after (ms) | heap growth % | reads / writes |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.errors} | ${r.wrongValues} | ${r.staleBeyondBound} | ${r.readP99Ms ?? '-'} / ${r.readMaxMs ?? '-'} | ${r.writeP99Ms ?? '-'} / ${r.writeMaxMs ?? '-'} | ${r.recoveryMs ?? 'never'}${r.promotionMs === null ? '' : ` (from the promotion, ${r.promotionMs} ms after the kill)`} | ${r.heapGrowthPct} | ${r.reads.toLocaleString('en')} / ${r.writes.toLocaleString('en')} |`,
    ),
  ]
  return `${lines.join('\n')}\n`
}

// Exit explicitly: a client left open by a failed row must not keep the run alive.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
