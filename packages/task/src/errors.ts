/** Errors of the task adapter, each with a stable `code` callers (and the admin handler) branch on. */

export type TaskErrorCode =
  | 'E_INVALID_QUERY'
  | 'E_TASK_NOT_FOUND'
  | 'E_HOST_NOT_FOUND'
  | 'E_INVALID_TRANSITION'
  | 'E_SCHEMA_TOO_NEW'
  | 'E_DATABASE_NOT_EMPTY'
  | 'E_DRIVER_MISSING'

export class TaskError extends Error {
  readonly code: TaskErrorCode
  constructor(code: TaskErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A query parameter, id or input field failed validation; `field` names it (e.g. `size`). */
export class InvalidTaskQueryError extends TaskError {
  readonly field: string
  constructor(message: string, field: string, options?: { cause?: unknown }) {
    super('E_INVALID_QUERY', message, options)
    this.field = field
  }
}

export class TaskNotFoundError extends TaskError {
  readonly taskId: string
  constructor(taskId: string) {
    super('E_TASK_NOT_FOUND', `task ${taskId} does not exist`)
    this.taskId = taskId
  }
}

export class HostNotFoundError extends TaskError {
  readonly hostId: string
  constructor(hostId: string, taskId?: string) {
    super(
      'E_HOST_NOT_FOUND',
      taskId === undefined
        ? `host ${hostId} does not exist (register it with upsertHosts first)`
        : `host ${hostId} is not a host of task ${taskId}`,
    )
    this.hostId = hostId
  }
}

/**
 * A write the task's state does not allow, e.g. starting a task that is not pending, or cancelling
 * one that already finished. `hint` says which states allow it.
 */
export class InvalidTaskTransitionError extends TaskError {
  readonly taskId: string
  /** The task's status when the write was refused. */
  readonly from: string
  constructor(taskId: string, from: string, action: string, hint?: string) {
    super('E_INVALID_TRANSITION', `cannot ${action} task ${taskId}: it is ${from}${hint === undefined ? '' : ` (${hint})`}`)
    this.taskId = taskId
    this.from = from
  }
}

/** The database was written by a newer version of the schema than this library knows. */
export class SchemaTooNewError extends TaskError {
  readonly found: number
  readonly supported: number
  constructor(found: number, supported: number) {
    super(
      'E_SCHEMA_TOO_NEW',
      `database schema version ${found} is newer than this library's (${supported}): open it with a newer @tiercache/task, or use another database`,
    )
    this.found = found
    this.supported = supported
  }
}

/** `seedTasks()` was given a database that already holds tasks. */
export class DatabaseNotEmptyError extends TaskError {
  readonly tasks: number
  constructor(tasks: number) {
    super('E_DATABASE_NOT_EMPTY', `seedTasks needs an empty database (it holds ${tasks} tasks): seed a new database, or delete its tasks first`)
    this.tasks = tasks
  }
}

/** The optional peer `better-sqlite3` is not installed. */
export class SqliteDriverMissingError extends TaskError {
  constructor(options?: { cause?: unknown }) {
    super('E_DRIVER_MISSING', '@tiercache/task/sqlite needs the better-sqlite3 package: install it (npm i better-sqlite3@12)', options)
  }
}

/** The optional peer `pg` is not installed. */
export class PostgresDriverMissingError extends TaskError {
  constructor(options?: { cause?: unknown }) {
    super('E_DRIVER_MISSING', '@tiercache/task/postgres needs the pg package: install it (npm i pg@8)', options)
  }
}
