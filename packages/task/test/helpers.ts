import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { createSqliteTaskRepository, seedTasks, type SeedOptions, type SqliteTaskRepository } from '@tiercache/task/sqlite'

/** A temp directory removed when the test ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-task-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A repository on a fresh SQLite file, seeded small, closed when the test ends. */
export function seededRepository(seed: SeedOptions = {}, now?: () => number): {
  repo: SqliteTaskRepository
  filename: string
  summary: ReturnType<typeof seedTasks>
} {
  const filename = join(tempDir(), 'tasks.db')
  const repo = createSqliteTaskRepository({ filename, ...(now ? { now } : {}) })
  onTestFinished(() => repo.close())
  const summary = seedTasks(repo, { tasks: 300, hosts: 40, activeTasks: 30, maxHostsPerTask: 6, seed: 7, ...seed })
  repo.resetQueryCount()
  return { repo, filename, summary }
}
