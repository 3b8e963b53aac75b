// The task state machine's contract, run on the PostgreSQL repository (a fresh database per test,
// copied from one migrated once).
import { startPostgres, type PostgresServer } from '@tiercache/testkit'
import { defineTaskRepositoryContract } from '@tiercache/testkit'
import { createPostgresTaskRepository } from '@tiercache/task/postgres'
import { afterAll, beforeAll } from 'vitest'

let server: PostgresServer

beforeAll(async () => {
  server = await startPostgres()
  const { url } = await server.createDatabase('contract_template')
  await (await createPostgresTaskRepository({ connectionString: url })).close()
})

afterAll(async () => {
  await server?.stop()
})

defineTaskRepositoryContract('PostgreSQL', async ({ now }) => {
  const { url } = await server.createDatabase(undefined, { template: 'contract_template' })
  const repository = await createPostgresTaskRepository({ connectionString: url, now, maxConnections: 4 })
  return {
    repository,
    async cleanup() {
      await repository.close()
    },
  }
})
