/**
 * The cache's admin endpoints as a plain node:http handler, so that it mounts in node:http,
 * express (`app.use(handler)`) or fastify (`fastify.all('/cache*', (rq, rp) => handler(rq.raw, rp.raw))`):
 *
 *   GET    /cache/stats        statistics (entries and hit rate per family, Redis memory, breaker)
 *   DELETE /cache              invalidate everything
 *   DELETE /cache/tasks/:id    invalidate every cached view of one task
 *   DELETE /cache/hosts/:id    invalidate the cached task lists of one host
 *   POST   /cache/warmup       load the hot entries
 *   POST   /cache/cleanup      delete expired and orphaned entries
 *
 * Every request needs `Authorization: Bearer <token>`. The token is compared in constant time over
 * SHA-256 digests (equal lengths, so neither the content nor the length leaks through timing).
 * Answers are JSON; errors are `{ error: { code, message } }` with 400/401/404/405/500.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import { InvalidOptionsError } from '@tiercache/core'
import { IdSchema } from './model.js'

/** What the handler needs from the service (`createCachedTaskService()` provides it). */
export interface TaskCacheAdmin {
  getCacheStatistics(): Promise<unknown>
  invalidateAllCache(): Promise<void>
  invalidateTaskCache(taskId: string): Promise<void>
  invalidateHostCache(hostId: string): Promise<void>
  warmupCache(): Promise<unknown>
  cleanupCache(): Promise<unknown>
}

export interface AdminHandlerOptions {
  /** The bearer token callers must present. At least 16 characters. */
  token: string
  /**
   * Path prefix the routes live under when the handler sees full URLs (e.g. `/admin` →
   * `/admin/cache/stats`). Express strips its mount path itself: leave this empty there.
   * @default ''
   */
  basePath?: string
  /** Called with errors the service threw (the client gets a 500 without details). */
  onError?: (error: unknown) => void
}

const OptionsSchema = z.strictObject({
  token: z.string().min(16, 'must be a string of at least 16 characters'),
  basePath: z
    .string()
    .regex(/^(\/[^/?#]+)*$/, 'must be empty or start with "/" and not end with "/"')
    .default(''),
  onError: z.custom<(error: unknown) => void>((v) => typeof v === 'function', 'must be a function').optional(),
})

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void

type Route =
  | { kind: 'stats' }
  | { kind: 'all' }
  | { kind: 'task'; id: string }
  | { kind: 'host'; id: string }
  | { kind: 'warmup' }
  | { kind: 'cleanup' }

const ALLOWED: Record<Route['kind'], string> = {
  stats: 'GET',
  all: 'DELETE',
  task: 'DELETE',
  host: 'DELETE',
  warmup: 'POST',
  cleanup: 'POST',
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(payload)
}

const failure = (res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void =>
  send(res, status, { error: { code, message } }, headers)

export function createAdminHandler(service: TaskCacheAdmin, options: AdminHandlerOptions): AdminHandler {
  const parsed = OptionsSchema.safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidOptionsError(issue?.path.join('.') ?? '', issue?.message ?? 'invalid', { cause: parsed.error })
  }
  const { basePath, onError } = parsed.data
  const expected = digest(parsed.data.token)
  const prefix = `${basePath}/cache`

  const authorized = (header: string | undefined): boolean => {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    // Compare a digest even when the header is missing, so both paths cost the same.
    const presented = digest(match?.[1] ?? '')
    return timingSafeEqual(presented, expected) && match !== null
  }

  const route = (path: string): Route | { invalid: string } | undefined => {
    if (path === prefix) return { kind: 'all' }
    if (!path.startsWith(`${prefix}/`)) return undefined
    const parts = path.slice(prefix.length + 1).split('/')
    if (parts.length === 1) {
      if (parts[0] === 'stats') return { kind: 'stats' }
      if (parts[0] === 'warmup') return { kind: 'warmup' }
      if (parts[0] === 'cleanup') return { kind: 'cleanup' }
      return undefined
    }
    if (parts.length === 2 && (parts[0] === 'tasks' || parts[0] === 'hosts')) {
      let raw: string
      try {
        raw = decodeURIComponent(parts[1] as string)
      } catch {
        return { invalid: 'the id is not valid percent-encoding' }
      }
      const id = IdSchema.safeParse(raw)
      if (!id.success) return { invalid: `invalid ${parts[0] === 'tasks' ? 'task' : 'host'} id: ${id.error.issues[0]?.message ?? 'invalid'}` }
      return { kind: parts[0] === 'tasks' ? 'task' : 'host', id: id.data }
    }
    return undefined
  }

  const act = async (r: Route): Promise<unknown> => {
    switch (r.kind) {
      case 'stats':
        return service.getCacheStatistics()
      case 'all':
        await service.invalidateAllCache()
        return { ok: true, invalidated: 'all' }
      case 'task':
        await service.invalidateTaskCache(r.id)
        return { ok: true, invalidated: { taskId: r.id } }
      case 'host':
        await service.invalidateHostCache(r.id)
        return { ok: true, invalidated: { hostId: r.id } }
      case 'warmup':
        return { ok: true, warmup: await service.warmupCache() }
      case 'cleanup':
        return { ok: true, cleanup: await service.cleanupCache() }
    }
  }

  return (req, res, next) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const found = route(path)
    if (found === undefined && next) {
      next()
      return
    }
    // The body is never read; drain it so the connection can be reused.
    req.resume()
    if (!authorized(req.headers.authorization)) {
      failure(res, 401, 'E_UNAUTHORIZED', 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="tiercache"' })
      return
    }
    if (found === undefined) {
      failure(res, 404, 'E_NOT_FOUND', `no route ${path}`)
      return
    }
    if ('invalid' in found) {
      failure(res, 400, 'E_INVALID_ID', found.invalid)
      return
    }
    const allowed = ALLOWED[found.kind]
    if (req.method !== allowed) {
      failure(res, 405, 'E_METHOD_NOT_ALLOWED', `${path} accepts ${allowed} only`, { allow: allowed })
      return
    }
    act(found).then(
      (body) => send(res, 200, body),
      (error: unknown) => {
        try {
          onError?.(error)
        } catch {
          // a failing error hook must not take the response down with it
        }
        if (!res.headersSent) failure(res, 500, 'E_INTERNAL', 'the cache operation failed')
        else res.destroy()
      },
    )
  }
}
