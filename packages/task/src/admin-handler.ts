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
 *   GET    /cache/dashboard    the operator page (HTML): the statistics, refreshed, and the actions
 *   POST   /cache/sign-in      the sign-in form's target: trades the token for a session cookie
 *   POST   /cache/sign-out     ends the session
 *
 * Every route needs `Authorization: Bearer <token>` or the session cookie the sign-in form sets
 * (`admin-session.ts`); the page without either answers 401 with the sign-in form, and a token
 * never travels in a URL. A change authenticated by the cookie must come from the handler's own
 * origin (`admin-origin.ts`). The token is compared in constant time over SHA-256 digests (equal
 * lengths, so neither the content nor the length leaks through timing). Answers are JSON but for
 * the two pages; errors are `{ error: { code, message } }` (the README's table lists them).
 *
 * Requests are hostile until proven otherwise: the whole prefix belongs to the handler (hostile
 * variants of its paths are never passed on to `next()`), an answer given before the body ended
 * closes the connection, an address that keeps presenting wrong tokens is blocked for a while, and
 * nothing the handler throws reaches the client or the host's event loop.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { TLSSocket } from 'node:tls'
import { z } from 'zod'
import { failure, redirect, refuse, REFUSED, send, sendPage } from './admin-answers.js'
import { isOrigin, sameOrigin } from './admin-origin.js'
import { DASHBOARD_HEADERS, dashboardPage, SIGN_IN_HEADERS, signInPage } from './admin-page.js'
import { ALLOWED, isUnder, pathOf, routeOf, type Route } from './admin-routes.js'
import { createSessions, sessionCookie, sessionCookieOf, type SessionCheck } from './admin-session.js'
import { createAuthFailureLimiter } from './auth-failures.js'
import { declaresTooLarge, readBody } from './body-limits.js'
import { parseOptions } from './parse-options.js'

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
  /** Lifetime of a dashboard session (the sign-in form's cookie), in ms. @default 28800000 (8 h) */
  sessionTtl?: number
  /**
   * Whether the session cookie is `Secure` (sent over HTTPS only). `'auto'`: when the request came
   * over TLS; set `true` behind a proxy that terminates TLS. @default 'auto'
   */
  secureCookie?: boolean | 'auto'
  /**
   * Origins (`https://ops.example.com`) the dashboard is served from, for the CSRF check of changes
   * made with the session cookie. @default the request's own `Host`, which a proxy that rewrites
   * `Host` breaks: list the public origin then.
   */
  allowedOrigins?: readonly string[]
  /** How often the dashboard refreshes its statistics, in ms. @default 5000 */
  dashboardRefresh?: number
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
  sessionTtl: z.number().int('must be an integer (ms)').min(60_000, 'must be at least 60000 ms').max(30 * 86_400_000, 'must be at most 30 days').default(8 * 3_600_000),
  secureCookie: z.union([z.boolean(), z.literal('auto')], { error: "must be true, false or 'auto'" }).default('auto'),
  allowedOrigins: z
    .array(z.string().refine(isOrigin, 'must be an origin like "https://ops.example.com" (scheme, host and port, no path)'))
    .min(1, 'must list at least one origin')
    .optional(),
  dashboardRefresh: z.number().int('must be an integer (ms)').min(500, 'must be at least 500 ms').max(3_600_000).default(5000),
})

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

/** Who a request is, as far as the admin handler is concerned. */
interface Caller {
  /** `none` with neither header; `bearer` decides whenever an Authorization header is sent. */
  readonly via: 'bearer' | 'cookie' | 'none'
  readonly credential: SessionCheck
}

/** Where express mounted the handler (`/admin` of `/admin/cache/stats`): it strips it from `req.url` alone. */
function mountOf(req: IncomingMessage): string {
  const original = (req as IncomingMessage & { originalUrl?: unknown }).originalUrl
  const url = typeof req.url === 'string' ? pathOf(req.url) : ''
  if (typeof original !== 'string') return ''
  const full = pathOf(original)
  if (full === url || !full.endsWith(url)) return ''
  const mount = full.slice(0, full.length - url.length)
  // It becomes the cookie's Path: anything but plain segments falls back to none.
  return /^(\/[A-Za-z0-9._~-]+)+$/.test(mount) ? mount : ''
}

export function createAdminHandler(service: TaskCacheAdmin, options: AdminHandlerOptions): AdminHandler {
  const o = parseOptions(OptionsSchema, options)
  const { basePath, onError, maxBodyBytes, bodyTimeout, secureCookie, allowedOrigins } = o
  const expected = digest(o.token)
  const prefix = `${basePath}/cache`
  const sessions = createSessions({ token: o.token, ttlMs: o.sessionTtl, now: Date.now })
  const dashboard = dashboardPage(o.dashboardRefresh)
  const failures = createAuthFailureLimiter({
    maxFailures: o.maxAuthFailures,
    windowMs: o.authFailureWindow,
    clock: o.clock,
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

  /** Constant-time comparison of a presented token with the admin token. */
  const isToken = (presented: string): boolean => timingSafeEqual(digest(presented), expected)

  const authorized = (header: string | undefined): boolean => {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    // Compare a digest even when the header is missing, so both paths cost the same.
    return isToken(match?.[1] ?? '') && match !== null
  }

  const identify = (req: IncomingMessage): Caller => {
    const header = req.headers.authorization
    const bearerOk = authorized(header)
    if (header !== undefined) return { via: 'bearer', credential: bearerOk ? 'valid' : 'invalid' }
    const credential = sessions.check(sessionCookieOf(req.headers.cookie))
    return { via: credential === 'none' ? 'none' : 'cookie', credential }
  }

  const cookieFor = (req: IncomingMessage, value: string, maxAge: number): string =>
    sessionCookie(value, {
      path: `${mountOf(req)}${prefix}`,
      maxAge,
      secure: secureCookie === 'auto' ? (req.socket as Partial<TLSSocket>).encrypted === true : secureCookie,
    })

  /** The sign-in form's post: the token in a form body, traded for a session cookie. */
  const signIn = (req: IncomingMessage, res: ServerResponse, body: Buffer, address: string): void => {
    if (!sameOrigin(req, allowedOrigins)) {
      sendPage(res, 403, signInPage('Sign in from the dashboard page of this server.'), SIGN_IN_HEADERS)
      return
    }
    const type = req.headers['content-type'] ?? ''
    if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
      failure(res, 415, 'E_UNSUPPORTED_MEDIA_TYPE', 'the sign-in form posts application/x-www-form-urlencoded')
      return
    }
    const token = (new URLSearchParams(body.toString('utf8')).get('token') ?? '').trim()
    if (!isToken(token)) {
      failures.recordFailure(address)
      sendPage(res, 401, signInPage('Wrong token.'), SIGN_IN_HEADERS)
      return
    }
    redirect(res, 'dashboard', { 'set-cookie': cookieFor(req, sessions.issue(), sessions.maxAgeSeconds) })
  }

  const signOut = (req: IncomingMessage, res: ServerResponse): void => {
    if (!sameOrigin(req, allowedOrigins)) {
      failure(res, 403, 'E_CROSS_ORIGIN', 'sign out from the dashboard page of this server')
      return
    }
    sessions.revoke(sessionCookieOf(req.headers.cookie))
    redirect(res, 'dashboard', { 'set-cookie': cookieFor(req, '', 0) })
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
      // Answered before the service is asked: never reached.
      case 'dashboard':
      case 'sign-in':
      case 'sign-out':
        throw new Error(`the ${r.kind} route is not an operation`)
    }
  }

  /** Once the body has ended: the credential, the route, the method, the origin, then the service. */
  const answer = (req: IncomingMessage, res: ServerResponse, path: string, address: string, body: Buffer): void => {
    // Compared for every request, blocked or not, so that a block does not show in the timing.
    const caller = identify(req)
    const blockedMs = failures.blockedFor(address)
    const found = routeOf(prefix, path)
    const kind = found === undefined || 'invalid' in found ? undefined : found.kind
    // The page and its form answer a browser in HTML; every other answer is JSON.
    const page = (kind === 'dashboard' && req.method === 'GET') || (kind === 'sign-in' && req.method === 'POST')
    if (blockedMs > 0) {
      const seconds = String(Math.ceil(blockedMs / 1000))
      const message = `too many wrong tokens from this address; retry in ${seconds} s`
      if (page) sendPage(res, 429, signInPage(`Too many wrong tokens from this address; retry in ${seconds} s.`), { ...SIGN_IN_HEADERS, 'retry-after': seconds })
      else failure(res, 429, 'E_TOO_MANY_ATTEMPTS', message, { 'retry-after': seconds })
      return
    }
    if (kind === 'sign-in' || kind === 'sign-out') {
      if (req.method !== 'POST') failure(res, 405, 'E_METHOD_NOT_ALLOWED', `${path} accepts POST only`, { allow: 'POST' })
      else if (kind === 'sign-in') signIn(req, res, body, address)
      else signOut(req, res)
      return
    }
    if (caller.credential !== 'valid') {
      // A credential that fails counts against the address, and so does a route asked without
      // one; a browser opening the page without one is shown the form, and a session that ran out
      // ended normally.
      if (caller.credential === 'invalid' || (caller.credential === 'none' && !page)) failures.recordFailure(address)
      if (page) {
        const message = caller.credential === 'expired' ? 'The session ended: sign in again.' : caller.credential === 'invalid' ? 'Wrong token.' : undefined
        sendPage(res, 401, signInPage(message), { ...SIGN_IN_HEADERS, 'www-authenticate': 'Bearer realm="tiercache"' })
      } else {
        failure(res, 401, 'E_UNAUTHORIZED', 'missing or wrong bearer token, or no valid session', { 'www-authenticate': 'Bearer realm="tiercache"' })
      }
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
    // A cookie comes with any site's request; a change it authenticates must come from our page.
    if (caller.via === 'cookie' && req.method !== 'GET' && !sameOrigin(req, allowedOrigins)) {
      failure(res, 403, 'E_CROSS_ORIGIN', `${req.method} with the session cookie must come from the dashboard's origin`)
      return
    }
    if (found.kind === 'dashboard') {
      sendPage(res, 200, dashboard, DASHBOARD_HEADERS)
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
    const path = pathOf(url)
    // The sign-in form's body is the one read; every other is discarded as it arrives.
    readBody(req, { maxBytes: maxBodyBytes, timeoutMs: bodyTimeout }, path === `${prefix}/sign-in`, (outcome, body) =>
      guard(res, () => {
        if (outcome === 'ended') answer(req, res, path, address, body)
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
