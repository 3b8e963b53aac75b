export { createSqliteTaskRepository, resolveSqliteTaskRepositoryOptions } from './sqlite-task-repository.js'
export type {
  ResolvedSqliteTaskRepositoryOptions,
  SqliteTaskRepository,
  SqliteTaskRepositoryOptions,
} from './sqlite-task-repository.js'
export { seedTasks, prng } from './seed.js'
export type { SeedOptions, SeedSummary } from './seed.js'
export { MIGRATIONS, SCHEMA_VERSION, migrate } from './schema.js'
