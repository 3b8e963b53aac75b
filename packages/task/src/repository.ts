/**
 * The database port of the task adapter: every read and write the cached service needs. The
 * service never talks SQL; `createSqliteTaskRepository()` (subpath `@tiercache/task/sqlite`) is the
 * implementation shipped with the package, and a service on another database writes its own.
 *
 * Writes report what they changed (`statusChanged`), so that the service invalidates exactly the
 * cache entries the write affected and nothing more.
 *
 * Which writes a task accepts, and what they do, is the task state machine's
 * (`state-machine.ts`: `planStart`, `planCancel`, `planStatusUpdate`, `planCommandResult`,
 * `settleTask`). An implementation reads the task, asks those functions and stores their answer in
 * one transaction; the testkit's `defineTaskRepositoryContract()` checks that it does.
 */
import type {
  CommandResult,
  Host,
  HostExecution,
  HostTasksPage,
  HostTasksQuery,
  NewTask,
  Task,
  TaskIdPage,
  TaskListPage,
  TaskListQuery,
  TaskProgressView,
  TaskStatistics,
  TaskStatus,
  TaskStatusView,
  TaskExecutionSummary,
} from './model.js'

/** The outcome of a write to a task. */
export interface TaskWriteResult {
  /** The task after the write. */
  readonly task: Task
  /** Whether the task's own status moved (list membership and host lists depend on it). */
  readonly statusChanged: boolean
  /** Whether host executions changed (cancel marks unfinished ones cancelled; start marks them running). */
  readonly executionsChanged: boolean
}

export interface CommandResultOutcome extends TaskWriteResult {
  readonly execution: HostExecution
}

/**
 * Reads return `null` for an unknown task; writes throw `TaskNotFoundError`, `HostNotFoundError`
 * or `InvalidTaskTransitionError`. All methods may be called concurrently.
 */
export interface TaskRepository {
  /**
   * Registers hosts: inserts the unknown ids, sets the ip of the known ones, all in one
   * transaction (all or nothing). Throws `InvalidTaskQueryError` (code `E_INVALID_QUERY`) naming
   * the field, e.g. `hosts.2.ip`, before anything is written: ids follow the id rules, ips are
   * IPv4 or IPv6 addresses, and an id appears at most once per call. `[]` does nothing.
   */
  upsertHosts(hosts: readonly Host[]): Promise<void>
  /** Creates a pending task with one pending execution per host. Hosts must exist (`upsertHosts`). */
  createTask(input: NewTask): Promise<Task>
  getTask(id: string): Promise<Task | null>
  /** pending → running; pending executions become running. Any other status: `InvalidTaskTransitionError`. */
  startTask(id: string): Promise<TaskWriteResult>
  /**
   * pending|running → cancelled; unfinished executions become cancelled, finished ones keep their
   * result. A finished or cancelled task: `InvalidTaskTransitionError`.
   */
  cancelTask(id: string): Promise<TaskWriteResult>
  /**
   * Sets the status as given: the operator's override, accepted from any status, finished tasks
   * included (it is how a finished task is corrected or reopened). Sets startedAt when leaving
   * pending and finishedAt on a final status when they are unset; a final status keeps an existing
   * finishedAt, a non-final one clears it. Executions are left alone; the same status changes nothing.
   */
  updateTaskStatus(id: string, status: TaskStatus): Promise<TaskWriteResult>
  /**
   * Records a host's result. When the task is running and every host has finished, the task
   * finishes too: `success` if every host succeeded, else `failed` (`statusChanged` says so).
   * A late result, on a task already finished or cancelled: a final one (success, failed,
   * timeout, cancelled) is recorded on its execution and the task keeps its status and finishedAt;
   * a non-final one (pending, running) is refused with `InvalidTaskTransitionError`.
   */
  recordCommandResult(taskId: string, hostId: string, result: CommandResult): Promise<CommandResultOutcome>

  getTaskStatusView(id: string): Promise<TaskStatusView | null>
  /** Same order as `ids`; `null` for unknown ids. One query for the whole batch. */
  getTaskStatusViews(ids: readonly string[]): Promise<(TaskStatusView | null)[]>
  getTaskProgressView(id: string): Promise<TaskProgressView | null>
  getTaskExecutionSummary(id: string): Promise<TaskExecutionSummary | null>
  /** The ids of a list page and the total matching the filters. */
  listTaskIds(query: TaskListQuery): Promise<TaskIdPage>
  /** A whole list page (ids + status views): what a service without a cache would run. */
  getTaskListPage(query: TaskListQuery): Promise<TaskListPage>
  getHostTasksPage(hostId: string, query: HostTasksQuery): Promise<HostTasksPage>
  getTaskStatistics(): Promise<TaskStatistics>
  /** Ids of running tasks, most recently started first (for warmup). */
  listRunningTaskIds(limit: number): Promise<string[]>
  /** Host ids of a task ([] when unknown) — the host groups a write on that task touches. */
  getTaskHostIds(id: string): Promise<string[]>

  /** SQL statements (or round trips) run since creation or the last reset. */
  readonly queryCount: number
  resetQueryCount(): void
  close(): Promise<void>
}
