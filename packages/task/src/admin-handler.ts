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
 * Answers are JSON; errors are `{ error: { code, message } }` (the README's table lists them).
 *
 * Requests are hostile until proven otherwise: the whole prefix belongs to the handler (hostile
 * variants of its paths are never passed on to `next()`), an answer given before the body ended
 * closes the connection, an address that keeps presenting wrong tokens is blocked for a while, and
 * nothing the handler throws reaches the client or the host's event loop.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { z } from 'zod'
import { InvalidOptionsError } from '@tiercache/core'
import { failure, refuse, REFUSED, send } from './admin-answers.js'
import { ALLOWED, isUnder, pathOf, routeOf, type Route } from './admin-routes.js'
import { createAuthFailureLimiter } from './auth-failures.js'
import { declaresTooLarge, discardBody } from './body-limits.js'

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
  /**
   * Called with errors the service threw and with unexpected errors inside the handler (the client
   * gets a 500 without details).
   */
  onError?: (error: unknown) => void
  /**
   * Largest request body accepted, in bytes; the routes take none. A larger declared
   * `content-length` is refused at once, a larger chunked body as soon as it passes.
   * @default 1024
   */
  maxBodyBytes?: number
  /** Time the request body may take to arrive, in ms. @default 5000 */
  bodyTimeout?: number
  /** Wrong or missing tokens from one address within `authFailureWindow` that block it. @default 10 */
  maxAuthFailures?: number
  /** Window the failures are counted in, and length of the block, in ms. @default 60000 */
  authFailureWindow?: number
  /** Time source of the failure window (ms, monotonic). @default performance */
  clock?: { now(): number }
}

/** Longest request URL accepted (the path with its query), in characters. */
const MAX_URL_LENGTH = 2048

// setTimeout's largest delay: longer ones would fire at once.
const MAX_DELAY_MS = 2_147_483_647

const OptionsSchema = z.strictObject({
  token: z.string().min(16, 'must be a string of at least 16 characters'),
  basePath: z
    .string()
    .regex(/^(\/[^/?#]+)*$/, 'must be empty or start with "/" and not end with "/"')
    .default(''),
  onError: z.custom<(error: unknown) => void>((v) => typeof v === 'function', 'must be a function').optional(),
  maxBodyBytes: z.number().int('must be an integer').min(0, 'must be 0 or more').max(Number.MAX_SAFE_INTEGER).default(1024),
  bodyTimeout: z.number().int('must be an integer (ms)').min(1, 'must be at least 1 ms').max(MAX_DELAY_MS).default(5000),
  maxAuthFailures: z.number().int('must be an integer').min(1, 'must be at least 1').default(10),
  authFailureWindow: z.number().int('must be an integer (ms)').min(1, 'must be at least 1 ms').max(MAX_DELAY_MS).default(60_000),
  clock: z
    .custom<{ now(): number }>(
      (v) => (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { now?: unknown }).now === 'function',
      'must be an object with a now() method',
    )
    .default(() => performance),
})

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

export function createAdminHandler(service: TaskCacheAdmin, options: AdminHandlerOptions): AdminHandler {
  const parsed = OptionsSchema.safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidOptionsError(issue?.path.join('.') ?? '', issue?.message ?? 'invalid', { cause: parsed.error })
  }
  const { basePath, onError, maxBodyBytes, bodyTimeout } = parsed.data
  const expected = digest(parsed.data.token)
  const prefix = `${basePath}/cache`
  const failures = createAuthFailureLimiter({
    maxFailures: parsed.data.maxAuthFailures,
    windowMs: parsed.data.authFailureWindow,
    clock: parsed.data.clock,
  })

  const report = (error: unknown): void => {
    try {
      onError?.(error)
    } catch {
      // a failing error hook must not take the response down with it
    }
  }

  /** The last resort of every step: a 500 without details, or a cut connection mid-answer. */
  const guard = (res: ServerResponse, step: () => void): void => {
    try {
      step()
    } catch (error) {
      report(error)
      try {
        if (res.headersSent) res.destroy()
        else refuse(res, 500, 'E_INTERNAL', 'the admin request failed')
      } catch {
        res.destroy()
      }
    }
  }

  const authorized = (header: string | undefined): boolean => {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    // Compare a digest even when the header is missing, so both paths cost the same.
    const presented = digest(match?.[1] ?? '')
    return timingSafeEqual(presented, expected) && match !== null
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

  /** Once the body has ended: the token, the route, the method, then the service. */
  const answer = (req: IncomingMessage, res: ServerResponse, path: string, address: string): void => {
    // Compared for every request, blocked or not, so that a block does not show in the timing.
    const tokenOk = authorized(req.headers.authorization)
    const blockedMs = failures.blockedFor(address)
    if (blockedMs > 0) {
      const seconds = String(Math.ceil(blockedMs / 1000))
      failure(res, 429, 'E_TOO_MANY_ATTEMPTS', `too many wrong tokens from this address; retry in ${seconds} s`, { 'retry-after': seconds })
      return
    }
    if (!tokenOk) {
      failures.recordFailure(address)
      failure(res, 401, 'E_UNAUTHORIZED', 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="tiercache"' })
      return
    }
    const found = routeOf(prefix, path)
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
      // send() throws on an answer JSON cannot hold (a BigInt, a cycle): guard it like the rest.
      (body) => guard(res, () => send(res, 200, body)),
      (error: unknown) => {
        report(error)
        guard(res, () => {
          if (!res.headersSent) failure(res, 500, 'E_INTERNAL', 'the cache operation failed')
          else res.destroy()
        })
      },
    )
  }

  /** Checks what the request line and headers tell at once, then waits out the body. */
  const admit = (req: IncomingMessage, res: ServerResponse, url: string): void => {
    if (url.length > MAX_URL_LENGTH) {
      refuse(res, 414, 'E_URI_TOO_LONG', `the URL is longer than ${MAX_URL_LENGTH} characters`)
      return
    }
    if (declaresTooLarge(req, maxBodyBytes)) {
      refuse(res, ...REFUSED['too-large'])
      return
    }
    // Taken now: the socket may have lost it by the time the body has ended.
    const address = req.socket.remoteAddress ?? 'unknown'
    discardBody(req, { maxBytes: maxBodyBytes, timeoutMs: bodyTimeout }, (outcome) =>
      guard(res, () => {
        if (outcome === 'ended') answer(req, res, pathOf(url), address)
        // No one is left to answer; should the socket live on, it must not hang there.
        else if (outcome === 'aborted') res.destroy()
        else refuse(res, ...REFUSED[outcome])
      }),
    )
  }

  return (req, res, next) => {
    const url = typeof req.url === 'string' ? req.url : '/'
    // With next() the handler owns the paths under the prefix only; without, every path.
    if (next && !isUnder(prefix, pathOf(url))) {
      next()
      return
    }
    guard(res, () => admit(req, res, url))
  }
}
