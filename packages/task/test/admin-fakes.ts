import type { TaskCacheAdmin } from '@tiercache/task'

export const TOKEN = 'admin-token-0123456789abcdef'

/** An admin service that records its calls; `fail` makes the statistics throw. */
export function fakeService(): TaskCacheAdmin & { calls: string[]; fail: boolean } {
  const calls: string[] = []
  const service = {
    calls,
    fail: false,
    async getCacheStatistics() {
      calls.push('stats')
      if (service.fail) throw new Error('boom: secret detail')
      return { families: { 'task:status': { entries: 3 } } }
    },
    async invalidateAllCache() {
      calls.push('all')
    },
    async invalidateTaskCache(id: string) {
      calls.push(`task:${id}`)
    },
    async invalidateHostCache(id: string) {
      calls.push(`host:${id}`)
    },
    async warmupCache() {
      calls.push('warmup')
      return { loaded: 4 }
    },
    async cleanupCache() {
      calls.push('cleanup')
      return { deleted: 2 }
    },
  }
  return service
}
