import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidOptionsError } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createAdminHandler, type AdminHandlerOptions, type TaskCacheAdmin } from '@tiercache/task'

const TOKEN = 'admin-token-0123456789abcdef'

function fakeService(): TaskCacheAdmin & { calls: string[]; fail: boolean } {
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

async function serve(service: TaskCacheAdmin, options: Partial<AdminHandlerOptions> = {}): Promise<string> {
  const handler = createAdminHandler(service, { token: TOKEN, ...options })
  const server: Server = createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const auth = { authorization: `Bearer ${TOKEN}` }

describe('admin handler over HTTP', () => {
  it('serves every route with the token', async () => {
    const service = fakeService()
    const base = await serve(service)
    const cases: [string, string, unknown][] = [
      ['GET', '/cache/stats', { families: { 'task:status': { entries: 3 } } }],
      ['DELETE', '/cache', { ok: true, invalidated: 'all' }],
      ['DELETE', '/cache/tasks/task-000001-abc', { ok: true, invalidated: { taskId: 'task-000001-abc' } }],
      ['DELETE', '/cache/hosts/h-0001', { ok: true, invalidated: { hostId: 'h-0001' } }],
      ['POST', '/cache/warmup', { ok: true, warmup: { loaded: 4 } }],
      ['POST', '/cache/cleanup', { ok: true, cleanup: { deleted: 2 } }],
    ]
    for (const [method, path, body] of cases) {
      const res = await fetch(base + path, { method, headers: auth })
      expect(res.status, `${method} ${path}`).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/application\/json/)
      expect(await res.json()).toEqual(body)
    }
    expect(service.calls).toEqual(['stats', 'all', 'task:task-000001-abc', 'host:h-0001', 'warmup', 'cleanup'])
  })

  it('answers 401 without the token or with a wrong one, and calls nothing', async () => {
    const service = fakeService()
    const base = await serve(service)
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }, { authorization: 'Bearer' }]) {
      const res = await fetch(`${base}/cache`, { method: 'DELETE', headers })
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED')
    }
    expect(service.calls).toEqual([])
  })

  it('answers 400 for invalid ids, 404 for unknown routes, 405 for wrong methods', async () => {
    const service = fakeService()
    const base = await serve(service)
    for (const path of ['/cache/tasks/a%20b', '/cache/hosts/%7B%7D', '/cache/tasks/%E0%A4%A', `/cache/tasks/${'x'.repeat(200)}`]) {
      const res = await fetch(base + path, { method: 'DELETE', headers: auth })
      expect(res.status, path).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_INVALID_ID')
    }
    for (const path of ['/cache/nope', '/cache/tasks', '/cache/tasks/a/b', '/other']) {
      const res = await fetch(base + path, { headers: auth })
      expect(res.status, path).toBe(404)
    }
    const res = await fetch(`${base}/cache/stats`, { method: 'POST', headers: auth })
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET')
    expect(service.calls).toEqual([])
  })

  it('answers 500 without details when the service fails, and reports the error', async () => {
    const service = fakeService()
    service.fail = true
    const errors: unknown[] = []
    const base = await serve(service, { onError: (e) => errors.push(e) })
    const res = await fetch(`${base}/cache/stats?x=1`, { headers: auth })
    expect(res.status).toBe(500)
    expect(JSON.stringify(await res.json())).not.toContain('secret')
    expect(errors).toHaveLength(1)
  })

  it('honours a base path and hands other paths to next()', async () => {
    const service = fakeService()
    const handler = createAdminHandler(service, { token: TOKEN, basePath: '/admin' })
    const server = createServer((req, res) => handler(req, res, () => {
      res.writeHead(418).end()
    }))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    expect((await fetch(`${base}/admin/cache/stats`, { headers: auth })).status).toBe(200)
    expect((await fetch(`${base}/cache/stats`, { headers: auth })).status).toBe(418)
  })

  it('refuses a short token or a bad base path', () => {
    expect(() => createAdminHandler(fakeService(), { token: 'short' })).toThrow(InvalidOptionsError)
    expect(() => createAdminHandler(fakeService(), { token: TOKEN, basePath: 'admin/' })).toThrow(/basePath/)
  })
})

describe('admin handler on a cached task service', () => {
  it('serves statistics, warmup, cleanup and invalidations of the real service', async () => {
    const { memoryCluster, settle } = await import('./service-helpers.js')
    const { nodes, summary, store } = memoryCluster(1)
    const service = nodes[0]!.service
    const base = await serve(service)
    const warm = await fetch(`${base}/cache/warmup`, { method: 'POST', headers: auth })
    expect(warm.status).toBe(200)
    expect(((await warm.json()) as { warmup: { tasks: number } }).warmup.tasks).toBe(30)
    await settle()
    const stats = (await (await fetch(`${base}/cache/stats`, { headers: auth })).json()) as { families: Record<string, { entries: number }> }
    expect(stats.families['task:status']?.entries).toBe(30)
    expect(stats.families['task:list']?.entries).toBe(2)
    // A status change moves the list generation: the two warmed pages are left to the older one.
    await service.cancelTask(summary.activeTaskIds[1] as string)
    const cleanup = (await (await fetch(`${base}/cache/cleanup`, { method: 'POST', headers: auth })).json()) as { cleanup: { deleted: number } }
    expect(cleanup.cleanup.deleted).toBe(2)
    const id = summary.activeTaskIds[0] as string
    expect((await fetch(`${base}/cache/tasks/${id}`, { method: 'DELETE', headers: auth })).status).toBe(200)
    expect(store.keys().some((k) => k.endsWith(`{${id}}`))).toBe(false)
    expect((await fetch(`${base}/cache`, { method: 'DELETE', headers: auth })).status).toBe(200)
    expect(store.keys()).toEqual([])
  })
})
