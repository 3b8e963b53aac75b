// Runs in a scratch project outside the workspace, against the packed packages as npm installed
// them: the ESM entry points load, a cached read crosses two processes' worth of caches over real
// Redis, and the task adapter serves a task page, its admin routes and its metrics.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { z } from 'zod'
import { createRedisCache } from '@tiercache/redis'
import { prometheusMetrics } from '@tiercache/prometheus'
import { createAdminHandler, createCachedTaskService } from '@tiercache/task'
import { createSqliteTaskRepository, seedTasks } from '@tiercache/task/sqlite'

const redis = process.env.REDIS_URL
assert.ok(redis, 'REDIS_URL is not set')
const namespace = `pack-install-${process.pid}`
const writer = createRedisCache({ redis, namespace, ttl: '1m' })
const reader = createRedisCache({ redis, namespace, ttl: '1m' })
const Order = z.object({ id: z.string(), total: z.number() })
const family = (cache) => cache.family({ name: 'orders', key: (id) => id, schema: Order })

let loads = 0
const loader = async ({ key }) => (loads++, { id: key, total: 42 })
assert.deepEqual(await family(writer).getOrSet('7', loader), { id: '7', total: 42 })
// The other cache finds it in Redis: no second load.
assert.deepEqual(await family(reader).getOrSet('7', loader), { id: '7', total: 42 })
assert.equal(loads, 1)
await family(writer).set('7', { id: '7', total: 43 })
// The bus tells the reader's L1; poll until the message arrived.
for (let i = 0; i < 200 && family(reader).peek('7')?.total === 42; i++) await new Promise((r) => setTimeout(r, 10))
assert.deepEqual(await family(reader).get('7'), { id: '7', total: 43 })

const dir = mkdtempSync(join(tmpdir(), 'tiercache-consumer-'))
const repository = createSqliteTaskRepository({ filename: join(dir, 'tasks.db') })
const seeded = seedTasks(repository, { tasks: 200, hosts: 10, activeTasks: 20 })
const tasks = createCachedTaskService({ cache: writer, repository })
const registry = new Registry()
const metrics = prometheusMetrics(writer, { registry })
const token = 'consumer-admin-token-0123456789'
const admin = createAdminHandler(tasks, { token })
const server = createServer(async (req, res) => {
  if (req.url?.startsWith('/cache')) return admin(req, res)
  if (req.url === '/metrics') {
    res.setHeader('content-type', registry.contentType)
    return res.end(await registry.metrics())
  }
  const id = decodeURIComponent(req.url?.slice('/tasks/'.length) ?? '')
  const view = await tasks.getTaskStatus(id)
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(view))
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const base = `http://127.0.0.1:${server.address().port}`
try {
  const id = seeded.activeTaskIds[0]
  const first = await (await fetch(`${base}/tasks/${id}`)).json()
  assert.equal(first.taskId, id)
  const queries = repository.queryCount
  assert.deepEqual(await (await fetch(`${base}/tasks/${id}`)).json(), first)
  assert.equal(repository.queryCount, queries, 'the second read came from the cache')
  const stats = await fetch(`${base}/cache/stats`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(stats.status, 200)
  assert.equal((await fetch(`${base}/cache/stats`)).status, 401)
  const page = await fetch(`${base}/cache/dashboard`)
  assert.equal(page.status, 401)
  assert.match(await page.text(), /<form/)
  assert.match(await (await fetch(`${base}/metrics`)).text(), /tiercache_reads_total/)
} finally {
  await new Promise((resolve) => server.close(resolve))
  metrics.close()
  await tasks.close()
  await repository.close()
  await reader.close()
  await writer.close()
  rmSync(dir, { recursive: true, force: true })
}
console.log('consumer: ok')
