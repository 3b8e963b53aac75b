// The task state machine's contract, run on the SQLite repository (a fresh file per test).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineTaskRepositoryContract } from '@tiercache/testkit'
import { createSqliteTaskRepository } from '@tiercache/task/sqlite'

defineTaskRepositoryContract('SQLite', async ({ now }) => {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-task-contract-'))
  const repository = createSqliteTaskRepository({ filename: join(dir, 'tasks.db'), now })
  return {
    repository,
    async cleanup() {
      await repository.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
