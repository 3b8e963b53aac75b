/**
 * Deterministic test and benchmark data: hosts, tasks and their executions, generated from a
 * seeded PRNG, so that the same seed gives the same rows whichever database stores them (the
 * SQLite and PostgreSQL seeders both insert what this yields). The newest `activeTasks` tasks are
 * running, with some hosts finished; older ones are finished (mostly success).
 */
import { z } from 'zod'
import { InvalidOptionsError } from '@tiercache/core'
import type { ExecutionStatus, TaskStatus } from './model.js'
import { parseOptions } from './parse-options.js'

export interface SeedOptions {
  /** @default 100000 */
  tasks?: number
  /** @default 1000 */
  hosts?: number
  /** Running tasks (the newest ones). @default 1000 */
  activeTasks?: number
  /** Hosts per task are drawn uniformly from 1..maxHostsPerTask. @default 8 */
  maxHostsPerTask?: number
  /** PRNG seed. @default 1 */
  seed?: number
  /** createdAt of the first task (epoch ms); each next task one minute later. @default 2024-05-01T00:00:00Z */
  startTime?: number
}

export interface SeedSummary {
  readonly tasks: number
  readonly hosts: number
  readonly executions: number
  readonly activeTasks: number
  /** Ids of the running tasks, oldest first. */
  readonly activeTaskIds: readonly string[]
  /** All host ids, `h-0001`… */
  readonly hostIds: readonly string[]
}

export type ResolvedSeedOptions = Required<SeedOptions>

const SeedOptionsSchema = z.strictObject({
  tasks: z.number().int().nonnegative().default(100_000),
  hosts: z.number().int().min(1).default(1000),
  activeTasks: z.number().int().nonnegative().default(1000),
  maxHostsPerTask: z.number().int().min(1).default(8),
  seed: z.number().int().default(1),
  startTime: z.number().int().default(Date.UTC(2024, 4, 1)),
})

/** Checks the options up front: a bad one throws `InvalidOptionsError` naming it, before anything is written. */
export function resolveSeedOptions(options: SeedOptions): ResolvedSeedOptions {
  const o = parseOptions(SeedOptionsSchema, options)
  if (o.activeTasks > o.tasks) throw new InvalidOptionsError('activeTasks', `must be at most tasks (${o.tasks})`)
  return o
}

/** mulberry32: small, fast and good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A task row as the seeders insert it (the columns of `tasks`, in order). */
export type SeedTask = readonly [seq: number, id: string, name: string, command: string, status: TaskStatus, createdAt: number, startedAt: number, finishedAt: number | null]

/** An execution row (the columns of `executions`, in order). */
export type SeedExecution = readonly [
  taskSeq: number,
  hostId: string,
  status: ExecutionStatus,
  exitCode: number | null,
  output: string,
  startedAt: number | null,
  finishedAt: number | null,
]

export interface SeedSink {
  host(id: string, ip: string): void
  /** A task and its executions (at least one). */
  task(task: SeedTask, executions: readonly SeedExecution[]): void
}

const FLAVOURS = ['web', 'api', 'worker', 'batch'] as const
const COMMANDS = ['deploy.sh --release', 'systemctl restart nginx', 'apt-get upgrade -y', 'healthcheck --full', 'logrotate -f'] as const
const OUTPUTS = [
  'deployed artifact release-%d to /opt/app',
  'restarted nginx, pid %d, config reloaded',
  'health check passed in %d ms, service up',
  'ERROR: connection refused to db:5432 (%d)',
  'disk usage %d%% on /var, cleanup skipped',
] as const

/** Generates every row of the data set into `sink`, hosts first. */
export function generateSeed(o: ResolvedSeedOptions, sink: SeedSink): SeedSummary {
  const maxHosts = Math.min(o.maxHostsPerTask, o.hosts)
  const random = prng(o.seed)
  const int = (n: number) => Math.floor(random() * n)
  const width = Math.max(4, String(o.hosts).length)
  const hostIds = Array.from({ length: o.hosts }, (_, i) => `h-${String(i + 1).padStart(width, '0')}`)
  const activeTaskIds: string[] = []
  let executions = 0

  for (const id of hostIds) sink.host(id, `10.${int(256)}.${int(256)}.${1 + int(254)}`)
  const firstActive = o.tasks - o.activeTasks
  const picked = new Set<number>()
  for (let i = 0; i < o.tasks; i++) {
    const seq = i + 1
    const id = `task-${String(seq).padStart(6, '0')}-${Math.floor(random() * 2_176_782_336).toString(36).padStart(6, '0')}`
    const name = `nightly-deploy-${FLAVOURS[int(FLAVOURS.length)]}-${String(seq % 100).padStart(2, '0')}`
    const command = COMMANDS[int(COMMANDS.length)] as string
    const createdAt = o.startTime + i * 60_000
    const startedAt = createdAt + 1500
    const active = i >= firstActive
    picked.clear()
    const count = 1 + int(maxHosts)
    while (picked.size < count) picked.add(int(o.hosts))

    const statuses: ExecutionStatus[] = []
    for (let h = 0; h < count; h++) statuses.push(active ? activeExecution(random) : finishedExecution(random))
    if (active && !statuses.some((s) => s === 'running' || s === 'pending')) statuses[0] = 'running'
    let status: TaskStatus
    if (active) status = 'running'
    else {
      const roll = random()
      status = roll < 0.03 ? 'cancelled' : statuses.every((s) => s === 'success') ? 'success' : 'failed'
      if (status === 'cancelled') for (let h = 0; h < count; h++) if (statuses[h] !== 'success') statuses[h] = 'cancelled'
    }
    let lastFinish = startedAt
    const rows: SeedExecution[] = []
    let h = 0
    for (const hostIndex of picked) {
      const s = statuses[h++] as ExecutionStatus
      const hostStart = s === 'pending' ? null : startedAt + int(5000)
      const hostFinish = s === 'pending' || s === 'running' || hostStart === null ? null : hostStart + 1000 + int(120_000)
      if (hostFinish !== null && hostFinish > lastFinish) lastFinish = hostFinish
      const exitCode = s === 'success' ? 0 : s === 'failed' ? 1 + int(127) : s === 'timeout' ? 124 : null
      const output = s === 'pending' ? '' : (OUTPUTS[int(OUTPUTS.length)] as string).replace('%d', String(int(10_000)))
      rows.push([seq, hostIds[hostIndex] as string, s, exitCode, output, hostStart, hostFinish])
    }
    sink.task([seq, id, name, command, status, createdAt, startedAt, active ? null : lastFinish], rows)
    executions += count
    if (active) activeTaskIds.push(id)
  }
  return { tasks: o.tasks, hosts: o.hosts, executions, activeTasks: o.activeTasks, activeTaskIds, hostIds }
}

function activeExecution(random: () => number): ExecutionStatus {
  const r = random()
  return r < 0.35 ? 'success' : r < 0.4 ? 'failed' : r < 0.9 ? 'running' : 'pending'
}

function finishedExecution(random: () => number): ExecutionStatus {
  const r = random()
  return r < 0.93 ? 'success' : r < 0.98 ? 'failed' : 'timeout'
}
