import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNodeProcess, type NodeProcess } from '@tiercache/testkit'
import { createSqliteTaskRepository, seedTasks, type SeedOptions, type SqliteTaskRepository } from '@tiercache/task/sqlite'
import { onTestFinished } from 'vitest'

const taskNode = fileURLToPath(new URL('./fixtures/task-node.ts', import.meta.url))

export interface CallResult<T = unknown> {
  readonly value: T
  /** Loader calls per family the call caused (families without loads are absent). */
  readonly loads: Readonly<Record<string, number>>
  readonly seq: number
}

export interface TaskNode {
  readonly name: string
  readonly instanceId: string
  readonly process: NodeProcess
  call<T = unknown>(method: string, ...args: unknown[]): Promise<CallResult<T>>
  state(): Promise<{ healthy: boolean; lastSeq: number; instanceId: string; breaker: string; queries: number }>
  /** Resolves once this node applied a bus message of `source` with a sequence >= `seq`. */
  applied(source: TaskNode, seq: number, timeoutMs?: number): Promise<void>
}

/** A seeded SQLite file in a temp dir (removed at the end) and a connection to it for checking. */
export function seededDatabase(seed: SeedOptions = {}): { filename: string; oracle: SqliteTaskRepository; summary: ReturnType<typeof seedTasks> } {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-task-int-'))
  const filename = join(dir, 'tasks.db')
  const oracle = createSqliteTaskRepository({ filename })
  const summary = seedTasks(oracle, { tasks: 300, hosts: 40, activeTasks: 30, maxHostsPerTask: 6, seed: 11, ...seed })
  onTestFinished(async () => {
    await oracle.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { filename, oracle, summary }
}

interface Applied {
  source: string
  seq: number
}

/** Starts `count` service processes on one database file, Redis and namespace. Stopped when the test ends. */
export async function startTaskNodes(count: number, env: Record<string, string>): Promise<TaskNode[]> {
  const processes = await Promise.all(Array.from({ length: count }, (_, i) => startNodeProcess(taskNode, { TC_NODE: `n${i}`, ...env })))
  onTestFinished(() => Promise.all(processes.map((p) => p.stop({ timeoutMs: 5_000 }))).then(() => {}))
  const started = await Promise.all(processes.map((p) => p.call<{ instanceId: string; healthy: boolean }>('start')))
  return processes.map((process, i) => {
    const instanceId = started[i]?.instanceId as string
    return {
      name: `n${i}`,
      instanceId,
      process,
      call: <T>(method: string, ...args: unknown[]) => process.call<CallResult<T>>('call', { method, args }),
      state: () => process.call('state'),
      async applied(source: TaskNode, seq: number, timeoutMs?: number) {
        const done = (d: Applied) => d.source === source.instanceId && d.seq >= seq
        if (process.events.some((e) => e.name === 'bus:applied' && done(e.data as Applied))) return
        await process.waitForEvent<Applied>('bus:applied', done, timeoutMs === undefined ? undefined : { timeoutMs })
      },
    }
  })
}

/**
 * Resolves once a message published by `from` now reaches `to`: after a Redis restart the
 * publishing connection may come back later than the subscriber, and messages sent meanwhile are
 * lost (the receivers dropped their L1 on recovery, so nothing stale survives).
 */
export async function busRoundTrip(from: TaskNode, to: TaskNode, hostId: string, attempts = 30): Promise<void> {
  for (let i = 0; ; i++) {
    const { seq } = await from.call('invalidateHostCache', hostId)
    try {
      await to.applied(from, seq, 1_000)
      return
    } catch (error) {
      if (i >= attempts) throw error
    }
  }
}
