/**
 * The writes of the SQLite repository, each one transaction taken with the write lock up front
 * (`BEGIN IMMEDIATE`): read the task, ask the state machine what the write does, store that.
 * The rules themselves live in `../state-machine.ts`; this module only reads and stores.
 */
import type { Database } from 'better-sqlite3'
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
import {
  countsOf,
  HostsInputSchema,
  newTaskId,
  rowOf,
  stateOf,
  validInput,
  type CountRow,
  type ExecutionRow,
  type QueryCounter,
  type TaskRow,
} from '../rows.js'
import {
  planCancel,
  planCommandResult,
  planStart,
  planStatusUpdate,
  settleTask,
  type TaskState,
  type TaskTransition,
} from '../state-machine.js'
import type { Statements } from './statements.js'
import type { SqliteTaskViews } from './views.js'

export class SqliteTaskWrites implements TaskWrites {
  readonly #s: Statements
  readonly #q: QueryCounter
  readonly #views: SqliteTaskViews
  readonly #now: () => number
  readonly #upsertHostsTx
  readonly #createTx
  readonly #transitionTx
  readonly #resultTx

  constructor(db: Database, statements: Statements, counter: QueryCounter, views: SqliteTaskViews, now: () => number) {
    this.#s = statements
    this.#q = counter
    this.#views = views
    this.#now = now
    this.#upsertHostsTx = db.transaction((hosts: readonly Host[]): void => {
      for (const host of hosts) this.#q.run(() => this.#s.upsertHost.run(host.id, host.ip))
    })
    this.#createTx = db.transaction((input: NewTask): Task => this.#create(input))
    this.#transitionTx = db.transaction((id: string, plan: (task: TaskState, now: number) => TaskTransition) => this.#transition(id, plan))
    this.#resultTx = db.transaction((taskId: string, hostId: string, result: CommandResult) => this.#result(taskId, hostId, result))
  }

  async upsertHosts(hosts: readonly Host[]): Promise<void> {
    const valid = validInput(HostsInputSchema, { hosts }, 'hosts').hosts
    if (valid.length > 0) this.#upsertHostsTx.immediate(valid)
  }

  async createTask(input: NewTask): Promise<Task> {
    return this.#createTx.immediate(validInput(NewTaskSchema, input, 'task'))
  }

  async startTask(id: string): Promise<TaskWriteResult> {
    return this.#transitionTx.immediate(id, planStart)
  }

  async cancelTask(id: string): Promise<TaskWriteResult> {
    return this.#transitionTx.immediate(id, planCancel)
  }

  async updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult> {
    const valid = validInput(TaskStatusSchema, status, 'status')
    return this.#transitionTx.immediate(id, (task, now) => planStatusUpdate(task, valid, now))
  }

  async recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome> {
    return this.#resultTx.immediate(taskId, hostId, validInput(CommandResultSchema, result, 'command result'))
  }

  #requireTask(id: string): TaskRow {
    const row = this.#views.taskRow(id)
    if (!row) throw new TaskNotFoundError(id)
    return row
  }

  #create(input: NewTask): Task {
    const known = new Set(this.#q.run(() => this.#s.knownHosts.all(JSON.stringify(input.hostIds))) as string[])
    for (const hostId of input.hostIds) if (!known.has(hostId)) throw new HostNotFoundError(hostId)
    const seq = this.#q.run(() => this.#s.nextSeq.get()) as number
    const id = newTaskId(seq)
    const now = this.#now()
    this.#q.run(() => this.#s.insertTask.run(seq, id, input.name, input.command, 'pending', now, null, null))
    for (const hostId of input.hostIds) {
      this.#q.run(() => this.#s.insertExecution.run(seq, hostId, 'pending', null, '', null, null))
    }
    return {
      id,
      name: input.name,
      command: input.command,
      status: 'pending',
      hostIds: [...input.hostIds].sort(),
      createdAt: new Date(now).toISOString(),
      startedAt: null,
      finishedAt: null,
    }
  }

  #transition(id: string, plan: (task: TaskState, now: number) => TaskTransition): TaskWriteResult {
    const row = this.#requireTask(id)
    const step = plan(stateOf(row), this.#now())
    const next = step.task
    if (step.taskChanged) this.#q.run(() => this.#s.setTaskState.run(next.status, next.startedAt, next.finishedAt, row.seq))
    let executionsChanged = false
    const sweep = step.sweep
    if (sweep !== null) {
      const args = { to: sweep.to, stamp: sweep.stamp, at: sweep.at, seq: row.seq, from: JSON.stringify(sweep.from) }
      executionsChanged = this.#q.run(() => this.#s.sweepExecutions.run(args)).changes > 0
    }
    return { task: this.#views.taskOf(rowOf(row, next)), statusChanged: step.statusChanged, executionsChanged }
  }

  #result(taskId: string, hostId: string, result: CommandResult): CommandResultOutcome {
    const row = this.#requireTask(taskId)
    const current = this.#q.run(() => this.#s.executionOf.get(row.seq, hostId)) as ExecutionRow | undefined
    if (!current) throw new HostNotFoundError(hostId, taskId)
    const now = this.#now()
    const task = stateOf(row)
    const step = planCommandResult(
      task,
      { status: current.status, exitCode: current.exit_code, output: current.output, startedAt: current.started_at, finishedAt: current.finished_at },
      result,
      now,
    )
    const e = step.execution
    this.#q.run(() => this.#s.setExecution.run(e.status, e.exitCode, e.output, e.startedAt, e.finishedAt, row.seq, hostId))
    let finished: TaskState | null = null
    if (step.mayFinish) {
      const counts = countsOf(this.#q.run(() => this.#s.executionCounts.all(row.seq)) as Pick<CountRow, 'est' | 'c'>[])
      const settled = settleTask(task, counts, now)
      if (settled !== null) this.#q.run(() => this.#s.setTaskState.run(settled.status, settled.startedAt, settled.finishedAt, row.seq))
      finished = settled
    }
    return {
      task: this.#views.taskOf(finished === null ? row : rowOf(row, finished)),
      execution: { taskId, hostId, ...e },
      statusChanged: finished !== null,
      executionsChanged: true,
    }
  }
}
