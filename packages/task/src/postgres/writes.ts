/**
 * The writes of the PostgreSQL repository, each one transaction on one pooled connection: lock the
 * task row (`SELECT … FOR UPDATE`), ask the state machine what the write does, store that. Writes
 * to one task take turns on its row lock, so that a result and a cancel racing on two processes
 * see each other; writes to different tasks run side by side. The rules themselves live in
 * `../state-machine.ts`; this module only reads and stores.
 */
import type { Pool, PoolClient } from 'pg'
import { HostNotFoundError, TaskNotFoundError } from '../errors.js'
import {
  CommandResultSchema,
  NewTaskSchema,
  TaskStatusSchema,
  type CommandResult,
  type Host,
  type NewTask,
  type Task,
  type TaskStatus,
} from '../model.js'
import type { CommandResultOutcome, TaskWriteResult } from '../repository.js'
import type { TaskWrites } from '../repository-parts.js'
import { countsOf, HostsInputSchema, newTaskId, rowOf, stateOf, taskOf, validInput, type CountRow, type ExecutionRow } from '../rows.js'
import {
  planCancel,
  planCommandResult,
  planStart,
  planStatusUpdate,
  settleTask,
  type TaskState,
  type TaskTransition,
} from '../state-machine.js'
import type { Queryable, Runner } from './statements.js'
import type { TaskWithHostsRow } from './views.js'

export class PostgresTaskWrites implements TaskWrites {
  readonly #pool: Pool
  readonly #r: Runner
  readonly #now: () => number

  constructor(pool: Pool, runner: Runner, now: () => number) {
    this.#pool = pool
    this.#r = runner
    this.#now = now
  }

  async upsertHosts(hosts: readonly Host[]): Promise<void> {
    const valid = validInput(HostsInputSchema, { hosts }, 'hosts').hosts
    if (valid.length === 0) return
    // One statement: atomic on its own, no transaction needed.
    await this.#r.changes(this.#pool as unknown as Queryable, 'upsertHosts', [valid.map((h) => h.id), valid.map((h) => h.ip)])
  }

  async createTask(input: NewTask): Promise<Task> {
    const valid = validInput(NewTaskSchema, input, 'task')
    return this.#transaction(async (tx) => {
      const known = new Set((await this.#r.rows<{ id: string }>(tx, 'knownHosts', [valid.hostIds])).map((r) => r.id))
      for (const hostId of valid.hostIds) if (!known.has(hostId)) throw new HostNotFoundError(hostId)
      const [next] = await this.#r.rows<{ n: number }>(tx, 'nextSeq', [])
      const seq = next?.n as number
      const id = newTaskId(seq)
      const now = this.#now()
      await this.#r.changes(tx, 'insertTask', [seq, id, valid.name, valid.command, now])
      await this.#r.changes(tx, 'insertExecutions', [seq, valid.hostIds])
      return {
        id,
        name: valid.name,
        command: valid.command,
        status: 'pending' as const,
        hostIds: [...valid.hostIds].sort(),
        createdAt: new Date(now).toISOString(),
        startedAt: null,
        finishedAt: null,
      }
    })
  }

  startTask(id: string): Promise<TaskWriteResult> {
    return this.#transition(id, planStart)
  }

  cancelTask(id: string): Promise<TaskWriteResult> {
    return this.#transition(id, planCancel)
  }

  updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult> {
    const valid = validInput(TaskStatusSchema, status, 'status')
    return this.#transition(id, (task, now) => planStatusUpdate(task, valid, now))
  }

  async recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome> {
    const valid = validInput(CommandResultSchema, result, 'command result')
    return this.#transaction(async (tx) => {
      const row = await this.#lock(tx, taskId)
      const [current] = await this.#r.rows<ExecutionRow>(tx, 'executionOf', [row.seq, hostId])
      if (!current) throw new HostNotFoundError(hostId, taskId)
      const now = this.#now()
      const task = stateOf(row)
      const step = planCommandResult(
        task,
        { status: current.status, exitCode: current.exit_code, output: current.output, startedAt: current.started_at, finishedAt: current.finished_at },
        valid,
        now,
      )
      const e = step.execution
      await this.#r.changes(tx, 'setExecution', [e.status, e.exitCode, e.output, e.startedAt, e.finishedAt, row.seq, hostId])
      let finished: TaskState | null = null
      if (step.mayFinish) {
        const counts = countsOf(await this.#r.rows<Pick<CountRow, 'est' | 'c'>>(tx, 'executionCounts', [row.seq]))
        finished = settleTask(task, counts, now)
        if (finished !== null) await this.#r.changes(tx, 'setTaskState', [finished.status, finished.startedAt, finished.finishedAt, row.seq])
      }
      return {
        task: taskOf(finished === null ? row : rowOf(row, finished), row.host_ids),
        execution: { taskId, hostId, ...e },
        statusChanged: finished !== null,
        executionsChanged: true,
      }
    })
  }

  #transition(id: string, plan: (task: TaskState, now: number) => TaskTransition): Promise<TaskWriteResult> {
    return this.#transaction(async (tx) => {
      const row = await this.#lock(tx, id)
      const step = plan(stateOf(row), this.#now())
      const next = step.task
      if (step.taskChanged) await this.#r.changes(tx, 'setTaskState', [next.status, next.startedAt, next.finishedAt, row.seq])
      let executionsChanged = false
      const sweep = step.sweep
      if (sweep !== null) {
        executionsChanged = (await this.#r.changes(tx, 'sweepExecutions', [sweep.to, sweep.stamp, sweep.at, row.seq, sweep.from])) > 0
      }
      return { task: taskOf(rowOf(row, next), row.host_ids), statusChanged: step.statusChanged, executionsChanged }
    })
  }

  async #lock(tx: Queryable, id: string): Promise<TaskWithHostsRow> {
    const [row] = await this.#r.rows<TaskWithHostsRow>(tx, 'lockTask', [id])
    if (!row) throw new TaskNotFoundError(id)
    return row
  }

  /**
   * Runs `work` in a transaction on one connection. A failed ROLLBACK means the connection is in
   * an unknown state: it is destroyed rather than handed to the next caller.
   */
  async #transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.#pool.connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const result = await work(client as unknown as Queryable)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch((rollback: Error) => {
        broken = rollback
      })
      throw error
    } finally {
      client.release(broken)
    }
  }
}
