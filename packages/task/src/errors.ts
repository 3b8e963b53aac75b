/** Errors of the task adapter, each with a stable `code` callers (and the admin handler) branch on. */

export type TaskErrorCode = 'E_INVALID_QUERY' | 'E_TASK_NOT_FOUND' | 'E_HOST_NOT_FOUND' | 'E_INVALID_TRANSITION'

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
    super('E_HOST_NOT_FOUND', taskId === undefined ? `host ${hostId} does not exist` : `host ${hostId} is not a host of task ${taskId}`)
    this.hostId = hostId
  }
}

/** E.g. starting a task that is not pending, or cancelling one that already finished. */
export class InvalidTaskTransitionError extends TaskError {
  constructor(taskId: string, from: string, action: string) {
    super('E_INVALID_TRANSITION', `cannot ${action} task ${taskId}: it is ${from}`)
  }
}

