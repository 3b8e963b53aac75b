import { createTieredCache, memoryBackend, memoryBus, memoryBusNetwork, memoryStore, type RemoteStore, type TieredCache } from '@tiercache/core'
import { onTestFinished } from 'vitest'
import { createCachedTaskService, type CachedTaskService, type CachedTaskServiceOptions } from '@tiercache/task'
import { createSqliteTaskRepository, type SeedOptions, type SqliteTaskRepository } from '@tiercache/task/sqlite'
import { seededRepository } from './helpers.js'

export interface Node {
  cache: TieredCache
  repo: SqliteTaskRepository
  service: CachedTaskService
}

/**
 * `count` service instances as separate "processes": each its own cache (L1) and SQLite
 * connection, sharing one database file, one memory L2 and one memory bus.
 */
export function memoryCluster(
  count: number,
  options: Partial<Omit<CachedTaskServiceOptions, 'cache' | 'repository'>> = {},
  seed: SeedOptions = {},
  wrapStore: (store: RemoteStore) => RemoteStore = (s) => s,
) {
  const { repo: oracle, filename, summary } = seededRepository(seed)
  const backend = memoryBackend()
  const network = memoryBusNetwork()
  const nodes: Node[] = []
  for (let i = 0; i < count; i++) {
    const repo = createSqliteTaskRepository({ filename })
    const cache = createTieredCache({
      l2: wrapStore(memoryStore({ backend, namespace: 'tasks' })),
      bus: memoryBus({ network }),
      l2Timeout: '5s',
    })
    const service = createCachedTaskService({ cache, repository: repo, maintenanceInterval: false, ...options })
    onTestFinished(async () => {
      await service.close()
      await cache.close()
      await repo.close()
    })
    nodes.push({ cache, repo, service })
  }
  const store = memoryStore({ backend, namespace: 'tasks' })
  return { nodes, oracle, summary, store, network }
}

/** Lets queued bus deliveries (microtasks) and background fills run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Statement count a call costs on a repository. */
export async function queriesOf<T>(repo: SqliteTaskRepository, fn: () => Promise<T>): Promise<{ value: T; queries: number }> {
  const before = repo.queryCount
  const value = await fn()
  return { value, queries: repo.queryCount - before }
}
