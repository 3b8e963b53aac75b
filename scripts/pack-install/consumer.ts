// Compiled with strict TypeScript against the installed packages' declarations: the types a
// consumer's compiler sees, not the workspace's sources.
import { createTieredCache, memoryStore, type Family, type TieredCache } from '@tiercache/core'
import { createRedisCache, type RedisCache } from '@tiercache/redis'
import { prometheusMetrics } from '@tiercache/prometheus'
import { createAdminHandler, createCachedTaskService, type TaskStatusView } from '@tiercache/task'
import { createSqliteTaskRepository } from '@tiercache/task/sqlite'
import { createPostgresTaskRepository } from '@tiercache/task/postgres'
import { Registry } from 'prom-client'
import { z } from 'zod'

const Order = z.object({ id: z.string(), total: z.number() })

export async function consumer(redisUrl: string): Promise<number> {
  const redis: RedisCache = createRedisCache({ redis: redisUrl, namespace: 'typed', ttl: '5m', grace: '1h' })
  const local: TieredCache = createTieredCache({ l2: memoryStore() })
  const orders: Family<string, z.infer<typeof Order>> = redis.family({ name: 'orders', key: (id: string) => id, schema: Order })
  const order = await orders.getOrSet('7', async ({ key }) => ({ id: key, total: 42 }))
  const total: number = order.total
  const repository = createSqliteTaskRepository({ filename: ':memory:' })
  const tasks = createCachedTaskService({ cache: local, repository })
  const view: TaskStatusView | null = await tasks.getTaskStatus('task-000001-aaaaaa')
  createAdminHandler(tasks, { token: 'a-token-of-at-least-16-chars' })
  prometheusMetrics(local, { registry: new Registry() }).close()
  const postgres = await createPostgresTaskRepository({ connectionString: 'postgres://127.0.0.1/tasks' })
  await Promise.all([tasks.close(), postgres.close(), repository.close(), local.close(), redis.close()])
  return total + (view === null ? 0 : 1)
}
