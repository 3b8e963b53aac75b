/**
 * The invalidation map: which cache entries a change to the task data makes wrong. The cached
 * service's writes and the operator's invalidations (`invalidateTaskCache`, `invalidateHostCache`,
 * on `TaskCacheService` and on the cached service) all go through `invalidationOf()`, and
 * `applyInvalidation()` carries the answer out, so there is one rule for each kind of entry:
 *
 * - the per-task views (status, progress, execution summary) of the task that changed;
 * - the list pages (`task:list` generation) when a task appeared or a task's status moved: that is
 *   what moves list membership, order and totals. The items of a page come from `task:status`,
 *   so a change of executions alone leaves the pages cached;
 * - the `host:tasks` pages of every host of the task when its status moved (each row shows the
 *   task's status), else of the hosts whose executions changed;
 * - the statistics when any status or execution changed (within `statsMaxStaleness` on the cached
 *   service).
 *
 * A write knows what it changed (its `TaskWriteResult`). An operator's invalidation does not: it
 * says the cached entries of a task (or a host) may be wrong, so it is read as the widest change
 * of that scope — a task whose status and executions may all have moved, a host whose executions
 * may have (a host holds executions only, so its invalidation leaves the list pages alone).
 */
import type { WriteOptions } from '@tiercache/core'
import type { TaskFamilies } from './families.js'
import type { Task } from './model.js'
import type { CommandResultOutcome, TaskWriteResult } from './repository.js'

/** Which write (or operator call) caused an invalidation; `statistics` is the deferred statistics one. */
export type TaskWriteKind =
  | 'createTask'
  | 'startTask'
  | 'cancelTask'
  | 'updateTaskStatus'
  | 'recordCommandResult'
  | 'invalidateTaskCache'
  | 'invalidateHostCache'
  | 'statistics'

/** What one change invalidated (the row of the map it followed). */
export interface InvalidationRecord {
  readonly write: TaskWriteKind
  readonly taskId?: string
  /** Per-task views dropped for `taskId`. */
  readonly taskViews: boolean
  /** The list generation was bumped. */
  readonly lists: boolean
  /** Hosts whose `host:tasks` generation was bumped. */
  readonly hosts: readonly string[]
  /** Statistics were marked dirty (invalidated within the staleness window). */
  readonly statistics: boolean
}

/** A change to the task data, as the map reads it. */
export type TaskChange =
  | { readonly write: 'createTask'; readonly task: Task }
  | { readonly write: 'startTask' | 'cancelTask' | 'updateTaskStatus'; readonly result: TaskWriteResult }
  | { readonly write: 'recordCommandResult'; readonly hostId: string; readonly outcome: CommandResultOutcome }
  | { readonly write: 'invalidateTaskCache'; readonly taskId: string; readonly hostIds: readonly string[] }
  | { readonly write: 'invalidateHostCache'; readonly hostId: string }

interface Moved {
  readonly taskId: string | undefined
  /** The task appeared or its status moved. */
  readonly status: boolean
  /** Every host of the task. */
  readonly taskHosts: readonly string[]
  /** The hosts whose executions changed. */
  readonly executionHosts: readonly string[]
}

function rule(write: TaskWriteKind, moved: Moved): InvalidationRecord {
  const record = {
    write,
    taskViews: moved.taskId !== undefined,
    lists: moved.status,
    hosts: moved.status ? moved.taskHosts : moved.executionHosts,
    statistics: moved.status || moved.executionHosts.length > 0,
  }
  return moved.taskId === undefined ? record : { ...record, taskId: moved.taskId }
}

export function invalidationOf(change: TaskChange): InvalidationRecord {
  switch (change.write) {
    case 'createTask':
      // The new id may have been read (and cached as absent) before it existed.
      return rule(change.write, { taskId: change.task.id, status: true, taskHosts: change.task.hostIds, executionHosts: change.task.hostIds })
    case 'startTask':
    case 'cancelTask':
    case 'updateTaskStatus': {
      const { task, statusChanged, executionsChanged } = change.result
      return rule(change.write, {
        taskId: task.id,
        status: statusChanged,
        taskHosts: task.hostIds,
        executionHosts: executionsChanged ? task.hostIds : [],
      })
    }
    case 'recordCommandResult': {
      const { task, statusChanged } = change.outcome
      return rule(change.write, { taskId: task.id, status: statusChanged, taskHosts: task.hostIds, executionHosts: [change.hostId] })
    }
    case 'invalidateTaskCache':
      return rule(change.write, { taskId: change.taskId, status: true, taskHosts: change.hostIds, executionHosts: change.hostIds })
    case 'invalidateHostCache':
      return rule(change.write, { taskId: undefined, status: false, taskHosts: [], executionHosts: [change.hostId] })
  }
}

/**
 * Drops what `record` names. `statistics` is how the caller invalidates the statistics (at once,
 * or within its staleness window).
 */
export async function applyInvalidation(
  families: TaskFamilies,
  record: InvalidationRecord,
  statistics: () => Promise<void>,
  write?: WriteOptions,
): Promise<void> {
  const { status, progress, execution, list, hostTasks } = families
  const work: Promise<void>[] = []
  if (record.taskViews && record.taskId !== undefined) {
    work.push(status.delete(record.taskId, write), progress.delete(record.taskId, write), execution.delete(record.taskId, write))
  }
  if (record.lists) work.push(list.invalidate(write))
  for (const host of record.hosts) work.push(hostTasks.invalidateGroup(host, write))
  if (record.statistics) work.push(statistics())
  await Promise.all(work)
}
