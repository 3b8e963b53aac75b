export {
  TASK_STATUSES,
  EXECUTION_STATUSES,
  TASK_LIST_SORTS,
  MAX_OUTPUT_CHARS,
  TaskStatusSchema,
  ExecutionStatusSchema,
  IdSchema,
  TaskSchema,
  HostExecutionSchema,
  HostSchema,
  HostListSchema,
  HostCountsSchema,
  TaskStatusViewSchema,
  HostDetailSchema,
  TaskProgressViewSchema,
  TaskListPageSchema,
  TaskIdPageSchema,
  HostTaskItemSchema,
  HostTasksPageSchema,
  TaskExecutionSummarySchema,
  TaskStatisticsSchema,
  NewTaskSchema,
  CommandResultSchema,
  TaskListQuerySchema,
  HostTasksQuerySchema,
  parseTaskListQuery,
  parseHostTasksQuery,
  parseId,
  taskListKey,
  hostTasksKey,
  progressOf,
} from './model.js'
export type {
  TaskStatus,
  ExecutionStatus,
  Task,
  Host,
  HostExecution,
  HostCounts,
  TaskStatusView,
  HostDetail,
  TaskProgressView,
  TaskListPage,
  TaskIdPage,
  HostTaskItem,
  HostTasksPage,
  TaskExecutionSummary,
  TaskStatistics,
  NewTask,
  CommandResult,
  TaskListSort,
  TaskListQuery,
  TaskListQueryInput,
  HostTasksQuery,
  HostTasksQueryInput,
} from './model.js'
export {
  TaskError,
  InvalidTaskQueryError,
  TaskNotFoundError,
  HostNotFoundError,
  InvalidTaskTransitionError,
  SchemaTooNewError,
  DatabaseNotEmptyError,
  SqliteDriverMissingError,
} from './errors.js'
export type { TaskErrorCode } from './errors.js'
export type { TaskRepository, TaskWriteResult, CommandResultOutcome } from './repository.js'
export {
  planStart,
  planCancel,
  planStatusUpdate,
  planCommandResult,
  settleTask,
  isFinalTaskStatus,
  isFinalExecutionStatus,
} from './state-machine.js'
export type { TaskState, ExecutionState, ExecutionSweep, TaskTransition, CommandResultTransition } from './state-machine.js'
export { createAdminHandler } from './admin-handler.js'
export type { AdminHandler, AdminHandlerOptions, TaskCacheAdmin } from './admin-handler.js'
export { createTaskFamilies, resolveTaskTtls, DEFAULT_TASK_TTLS, TASK_FAMILY_NAMES, TASK_FAMILY_VERSION } from './families.js'
export type { TaskFamilies, TaskFamilyTtls, HostTasksParams } from './families.js'
export { invalidationOf } from './invalidation-map.js'
export type { InvalidationRecord, TaskChange, TaskWriteKind } from './invalidation-map.js'
export { createTaskCacheService } from './task-cache-service.js'
export type { TaskCacheService, TaskCacheServiceOptions, InvalidateTaskOptions } from './task-cache-service.js'
export { createCachedTaskService } from './cached-task-service.js'
export type { CachedTaskService } from './cached-task-service.js'
export { resolveCachedTaskServiceOptions } from './service-options.js'
export type { CachedTaskServiceOptions, ResolvedCachedTaskServiceOptions } from './service-options.js'
export type { TaskCacheStatistics, FamilyStatistics } from './cache-statistics.js'
export type { WarmupReport, CleanupReport } from './maintenance.js'
