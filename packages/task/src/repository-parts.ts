/**
 * A `TaskRepository` put together from its reads, its writes and its statement counter: what the
 * SQLite and the PostgreSQL repositories share. Each database brings its own reads and writes
 * (their SQL and driver differ); this class only maps the port's methods onto them.
 */
import type {
  CommandResult,
  Host,
  HostTasksPage,
  HostTasksQuery,
  NewTask,
  Task,
  TaskExecutionSummary,
  TaskIdPage,
  TaskListPage,
  TaskListQuery,
  TaskProgressView,
  TaskStatistics,
  TaskStatus,
  TaskStatusView,
} from './model.js'
import type { CommandResultOutcome, TaskRepository, TaskWriteResult } from './repository.js'
import type { QueryCounter } from './rows.js'

type Answer<T> = T | Promise<T>

/** A database's reads, one per view of the port (synchronous on an in-process database). */
export interface TaskReads {
  task(id: string): Answer<Task | null>
  statusView(id: string): Answer<TaskStatusView | null>
  statusViews(ids: readonly string[]): Answer<(TaskStatusView | null)[]>
  progressView(id: string): Answer<TaskProgressView | null>
  executionSummary(id: string): Answer<TaskExecutionSummary | null>
  listTaskIds(query: TaskListQuery): Answer<TaskIdPage>
  taskListPage(query: TaskListQuery): Answer<TaskListPage>
  hostTasksPage(hostId: string, query: HostTasksQuery): Answer<HostTasksPage>
  statistics(): Answer<TaskStatistics>
  runningTaskIds(limit: number): Answer<string[]>
  taskHostIds(id: string): Answer<string[]>
}

/** A database's writes, each one transaction. */
export interface TaskWrites {
  upsertHosts(hosts: readonly Host[]): Promise<void>
  createTask(input: NewTask): Promise<Task>
  startTask(id: string): Promise<TaskWriteResult>
  cancelTask(id: string): Promise<TaskWriteResult>
  updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult>
  recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome>
}

export abstract class RepositoryOnParts implements TaskRepository {
  readonly #reads: TaskReads
  readonly #writes: TaskWrites
  readonly #counter: QueryCounter

  constructor(reads: TaskReads, writes: TaskWrites, counter: QueryCounter) {
    this.#reads = reads
    this.#writes = writes
    this.#counter = counter
  }

  get queryCount(): number {
    return this.#counter.count
  }

  resetQueryCount(): void {
    this.#counter.count = 0
  }

  abstract close(): Promise<void>

  upsertHosts(hosts: readonly Host[]): Promise<void> {
    return this.#writes.upsertHosts(hosts)
  }

  createTask(input: NewTask): Promise<Task> {
    return this.#writes.createTask(input)
  }

  startTask(id: string): Promise<TaskWriteResult> {
    return this.#writes.startTask(id)
  }

  cancelTask(id: string): Promise<TaskWriteResult> {
    return this.#writes.cancelTask(id)
  }

  updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult> {
    return this.#writes.updateTaskStatus(id, status)
  }

  recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome> {
    return this.#writes.recordCommandResult(taskId, hostId, result)
  }

  // The reads are async functions: a synchronous read that throws still answers a rejection.
  async getTask(id: string): Promise<Task | null> {
    return this.#reads.task(id)
  }

  async getTaskStatusView(id: string): Promise<TaskStatusView | null> {
    return this.#reads.statusView(id)
  }

  async getTaskStatusViews(ids: readonly string[]): Promise<(TaskStatusView | null)[]> {
    return this.#reads.statusViews(ids)
  }

  async getTaskProgressView(id: string): Promise<TaskProgressView | null> {
    return this.#reads.progressView(id)
  }

  async getTaskExecutionSummary(id: string): Promise<TaskExecutionSummary | null> {
    return this.#reads.executionSummary(id)
  }

  async listTaskIds(query: TaskListQuery): Promise<TaskIdPage> {
    return this.#reads.listTaskIds(query)
  }

  async getTaskListPage(query: TaskListQuery): Promise<TaskListPage> {
    return this.#reads.taskListPage(query)
  }

  async getHostTasksPage(hostId: string, query: HostTasksQuery): Promise<HostTasksPage> {
    return this.#reads.hostTasksPage(hostId, query)
  }

  async getTaskStatistics(): Promise<TaskStatistics> {
    return this.#reads.statistics()
  }

  async listRunningTaskIds(limit: number): Promise<string[]> {
    return this.#reads.runningTaskIds(limit)
  }

  async getTaskHostIds(id: string): Promise<string[]> {
    return this.#reads.taskHostIds(id)
  }
}
