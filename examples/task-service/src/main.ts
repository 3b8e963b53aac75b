/**
 * Runs the task service with everything it needs: a redis-server of its own on a free loopback
 * port (or the one REDIS_URL names), a fresh SQLite file seeded with a few tasks, the cache and
 * the cached task service over them, and the fastify app on PORT. SIGINT or SIGTERM closes it
 * all down again, and the Redis it started and the SQLite file go with it.
 *
 *   PORT          port to listen on (default 3000; 0 for a free one)
 *   HOST          address to listen on (default 127.0.0.1: the admin routes are not for the world)
 *   REDIS_URL     use this Redis instead of starting one
 *   ADMIN_TOKEN   the admin token (at least 16 characters; default: a random one, printed)
 *   LOG_LEVEL     fastify's log level (default info)
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedis } from '@tiercache/testkit'
import { buildApp } from './app.js'
import { createTaskStack } from './stack.js'

const port = parsePort(process.env.PORT ?? '3000')
const host = process.env.HOST ?? '127.0.0.1'
const adminToken = process.env.ADMIN_TOKEN ?? randomBytes(24).toString('base64url')
if (adminToken.length < 16) fail('ADMIN_TOKEN must be at least 16 characters long')

// Undone in reverse order on shutdown, and on a failed start.
const cleanups: { what: string; run: () => Promise<void> | void }[] = []

async function start(): Promise<void> {
  let redisUrl = process.env.REDIS_URL
  let namespace = 'task-service'
  if (redisUrl === undefined) {
    const redis = await startRedis()
    cleanups.push({ what: 'stop Redis', run: () => redis.stop() })
    redisUrl = redis.url
  } else {
    // Someone else's Redis may hold an earlier run's entries for the same seeded ids: start afresh
    // under a namespace of this run's own, and clear it on the way out.
    namespace = `task-service-${randomBytes(4).toString('hex')}`
  }

  const dir = mkdtempSync(join(tmpdir(), 'tiercache-task-service-'))
  cleanups.push({ what: 'remove the SQLite file', run: () => rmSync(dir, { recursive: true, force: true }) })
  const filename = join(dir, 'tasks.db')

  const stack = await createTaskStack({ redis: redisUrl, namespace, filename })
  cleanups.push({ what: 'close the service, cache and repository', run: () => stack.close() })
  if (process.env.REDIS_URL !== undefined) {
    cleanups.push({ what: `clear the namespace ${namespace}`, run: () => stack.service.invalidateAllCache() })
  }

  const app = await buildApp({
    service: stack.service,
    cache: stack.cache,
    registry: stack.registry,
    adminToken,
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  })
  cleanups.push({ what: 'close the HTTP server', run: () => app.close() })
  await app.listen({ port, host })

  const address = app.server.address()
  const shown = host.includes(':') ? `[${host}]` : host
  const base = `http://${shown}:${typeof address === 'object' && address !== null ? address.port : port}`
  const task = stack.seeded?.activeTaskIds.at(-1)
  const hostId = stack.seeded?.hostIds[0]
  console.log(
    [
      '',
      `task service listening on ${base}`,
      `  tasks       ${base}/tasks${task ? `   (a running one: ${base}/tasks/${task})` : ''}`,
      `  host tasks  ${base}/hosts/${hostId ?? 'h-01'}/tasks`,
      `  statistics  ${base}/stats`,
      `  metrics     ${base}/metrics`,
      `  health      ${base}/health`,
      `  dashboard   ${base}/cache/dashboard   (sign in with the admin token)`,
      `  admin token ${process.env.ADMIN_TOKEN === undefined ? adminToken : '(ADMIN_TOKEN)'}`,
      `  redis       ${process.env.REDIS_URL === undefined ? `${redisUrl} (started for this run)` : `REDIS_URL, namespace ${namespace}`}`,
      `  sqlite      ${filename} (${stack.seeded ? `${stack.seeded.tasks} tasks on ${stack.seeded.hosts} hosts, ` : ''}removed on exit)`,
      '',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  )
}

let stopping = false

async function shutdown(reason: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.log(`\n${reason}: shutting down`)
  let failed = false
  for (const { what, run } of cleanups.splice(0).reverse()) {
    try {
      await run()
    } catch (error) {
      failed = true
      console.error(`could not ${what}:`, error)
    }
  }
  console.log(failed ? 'stopped, with errors' : 'stopped')
  process.exitCode = failed ? 1 : 0
}

/** How long closing may take before the process gives up waiting and exits. */
const SHUTDOWN_TIMEOUT_MS = 10_000

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Ctrl-C reaches this process more than once (from the terminal, and relayed by pnpm and tsx):
    // a repeated signal is not a second request, so only the first one counts.
    if (stopping) return
    // Should closing hang, exit anyway: the testkit's watchdog stops the Redis it started once
    // this process is gone.
    setTimeout(() => {
      console.error(`shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS} ms: exiting`)
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS).unref()
    void shutdown(signal)
  })
}

start().catch(async (error: unknown) => {
  console.error('the task service did not start:', error)
  await shutdown('start failed')
  process.exitCode = 1
})

function parsePort(text: string): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value > 65_535) fail(`PORT must be a port number (0 to 65535), got "${text}"`)
  return value
}

function fail(message: string): never {
  console.error(message)
  process.exit(1)
}
