/**
 * The task state machine: which writes a task accepts in which state, and what they do to the task
 * and to its executions. Pure functions over the model; a repository reads the current state,
 * asks these functions for the next one and stores it, inside one transaction of its own. SQLite
 * and any other database thereby follow the same rules (the testkit's task-repository contract
 * checks them on an implementation).
 *
 *     pending ──start──► running ──every execution final──► success | failed
 *        │                  │
 *        └─────cancel───────┴──► cancelled
 *
 *   updateTaskStatus: any status to any status — the operator's override, finished tasks included.
 *
 * Times are epoch milliseconds, as repositories store them.
 */
import { InvalidTaskTransitionError } from './errors.js'
import {
  MAX_OUTPUT_CHARS,
  TERMINAL_EXECUTION_STATUSES,
  TERMINAL_TASK_STATUSES,
  type CommandResult,
  type ExecutionStatus,
  type HostCounts,
  type HostExecution,
  type TaskStatus,
} from './model.js'

/** A task as a write sees it. */
export interface TaskState {
  readonly id: string
  readonly status: TaskStatus
  readonly startedAt: number | null
  readonly finishedAt: number | null
}

/** An execution as a write sees it. */
export type ExecutionState = Pick<HostExecution, 'status' | 'exitCode' | 'output' | 'startedAt' | 'finishedAt'>

/**
 * A change to many executions of one task at once: those in one of the `from` states become `to`,
 * and their `stamp` time is set to `at` (the other time is left as it is).
 */
export interface ExecutionSweep {
  readonly from: readonly ExecutionStatus[]
  readonly to: ExecutionStatus
  readonly stamp: 'startedAt' | 'finishedAt'
  readonly at: number
}

export interface TaskTransition {
  /** The task after the write. */
  readonly task: TaskState
  readonly statusChanged: boolean
  /** Whether the task's status or times changed: a repository stores the task only then. */
  readonly taskChanged: boolean
  /** What happens to the task's executions, or null when they are left alone. */
  readonly sweep: ExecutionSweep | null
}

export interface CommandResultTransition {
  /** The execution after the result. */
  readonly execution: ExecutionState
  /**
   * Whether the task may finish with this result: then the repository counts the task's
   * executions after storing this one and asks `settleTask()`.
   */
  readonly mayFinish: boolean
}

const UNFINISHED: readonly ExecutionStatus[] = ['pending', 'running']

export const isFinalTaskStatus = (status: TaskStatus): boolean => TERMINAL_TASK_STATUSES.has(status)
export const isFinalExecutionStatus = (status: ExecutionStatus): boolean => TERMINAL_EXECUTION_STATUSES.has(status)

/** pending → running; the pending executions start now. */
export function planStart(task: TaskState, now: number): TaskTransition {
  if (task.status !== 'pending') throw new InvalidTaskTransitionError(task.id, task.status, 'start', 'only a pending task can be started')
  return {
    task: { ...task, status: 'running', startedAt: now, finishedAt: null },
    statusChanged: true,
    taskChanged: true,
    sweep: { from: ['pending'], to: 'running', stamp: 'startedAt', at: now },
  }
}

/**
 * pending | running → cancelled, finished now; the unfinished executions are cancelled now, the
 * finished ones keep their result.
 */
export function planCancel(task: TaskState, now: number): TaskTransition {
  if (isFinalTaskStatus(task.status)) {
    throw new InvalidTaskTransitionError(
      task.id,
      task.status,
      'cancel',
      'only a pending or running task can be cancelled; updateTaskStatus overrides the status of a finished one',
    )
  }
  return {
    task: { ...task, status: 'cancelled', finishedAt: now },
    statusChanged: true,
    taskChanged: true,
    sweep: { from: UNFINISHED, to: 'cancelled', stamp: 'finishedAt', at: now },
  }
}

/**
 * The operator's override: any status, from any status. It is how an operator corrects a task, and
 * a finished task is the one that most often needs it (marked failed because a host was
 * unreachable, fixed by hand since; reopened to take the results of a re-run), so it is accepted
 * there too rather than refused.
 *
 * - Leaving `pending` sets `startedAt` when it is unset; back to `pending` keeps it.
 * - A final status sets `finishedAt` when it is unset and keeps it otherwise (re-labelling a finished
 *   task does not move when it finished); a non-final one clears it (the task is reopened).
 * - Executions are left as they are. A reopened `running` task finishes again with the next final
 *   result once every execution is final (`settleTask`).
 * - The same status with nothing else to set changes nothing (`taskChanged: false`).
 */
export function planStatusUpdate(task: TaskState, status: TaskStatus, now: number): TaskTransition {
  const startedAt = status === 'pending' ? task.startedAt : (task.startedAt ?? now)
  const finishedAt = isFinalTaskStatus(status) ? (task.finishedAt ?? now) : null
  const next: TaskState = { ...task, status, startedAt, finishedAt }
  return {
    task: next,
    statusChanged: task.status !== status,
    taskChanged: task.status !== status || task.startedAt !== startedAt || task.finishedAt !== finishedAt,
    sweep: null,
  }
}

/**
 * A host's result on its execution. The status is the one reported; an absent exit code or
 * output keeps the recorded one; output is cut at `MAX_OUTPUT_CHARS`; a final status finishes the
 * execution now, and any status but `pending` marks it started (now, if it was not yet).
 *
 * On a task that is already finished or cancelled — a late result — a final result is recorded on
 * its execution and the task keeps its status and finish time: the host did run the command (a
 * cancel cannot stop a command already running), and its exit code and output are what an operator
 * looks at afterwards; reopening the task would undo a decision taken by the task's own rules or by
 * an operator. A non-final result (`pending`, `running`) on such a task is refused with
 * `InvalidTaskTransitionError`: it would show hosts at work under a task that is over, and tells
 * the reporting host that the task ended.
 */
export function planCommandResult(task: TaskState, current: ExecutionState, result: CommandResult, now: number): CommandResultTransition {
  const final = isFinalExecutionStatus(result.status)
  if (!final && isFinalTaskStatus(task.status)) {
    throw new InvalidTaskTransitionError(
      task.id,
      task.status,
      `record a ${result.status} result for`,
      'a finished or cancelled task takes final results only: success, failed, timeout or cancelled',
    )
  }
  return {
    execution: {
      status: result.status,
      exitCode: result.exitCode === undefined ? current.exitCode : result.exitCode,
      output: result.output === undefined ? current.output : result.output.slice(0, MAX_OUTPUT_CHARS),
      startedAt: result.status === 'pending' ? current.startedAt : (current.startedAt ?? now),
      finishedAt: final ? now : null,
    },
    mayFinish: final && task.status === 'running',
  }
}

/**
 * Auto-finish: a running task whose executions are all final finishes now — `success` when every
 * one succeeded, else `failed`. Returns the finished task, or null when it does not finish (not
 * running, or an execution is still pending or running). Only a running task finishes this way: a
 * task that was never started, or that is already over, keeps its status.
 */
export function settleTask(task: TaskState, hosts: HostCounts, now: number): TaskState | null {
  if (task.status !== 'running' || hosts.pending + hosts.running > 0) return null
  return { ...task, status: hosts.success === hosts.total ? 'success' : 'failed', finishedAt: now }
}
