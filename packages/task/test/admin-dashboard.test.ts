import { createHash } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidOptionsError } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createAdminHandler, type AdminHandlerOptions, type TaskCacheAdmin } from '@tiercache/task'
import { fakeService, TOKEN } from './admin-fakes.js'

interface Started {
  port: number
  /** `http://127.0.0.1:<port>`: the origin of the handler's own pages. */
  origin: string
}

/** Serves the handler on 127.0.0.1; `wrap` may dress the request up first (as express would). */
async function start(service: TaskCacheAdmin, options: Partial<AdminHandlerOptions> = {}, wrap?: (req: IncomingMessage) => void): Promise<Started> {
  const handler = createAdminHandler(service, { token: TOKEN, ...options })
  const server: Server = createServer((req, res) => {
    wrap?.(req)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  return { port, origin: `http://127.0.0.1:${port}` }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request with exactly the headers given (node:http sets Host itself). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const bearer = { authorization: `Bearer ${TOKEN}` }

const form = (token: string): string => new URLSearchParams({ token }).toString()

/** The one Set-Cookie of an answer. */
function setCookieOf(answer: Answer): string {
  const cookies = answer.headers['set-cookie'] ?? []
  expect(cookies).toHaveLength(1)
  return cookies[0] as string
}

/** The `name=value` pair a browser sends back for a Set-Cookie. */
const pairOf = (setCookie: string): string => setCookie.split(';')[0] as string

/** Signs in through the form, and returns the Cookie header a browser would send after. */
async function signIn(started: Started, token = TOKEN): Promise<string> {
  const answer = await send(started.port, 'POST', '/cache/sign-in', { ...FORM, origin: started.origin }, form(token))
  expect(answer.status).toBe(303)
  return pairOf(setCookieOf(answer))
}

const codeOf = (answer: Answer): string => (JSON.parse(answer.body) as { error: { code: string } }).error.code

/** The directives of a Content-Security-Policy, by name. */
function policyOf(answer: Answer): Map<string, string[]> {
  const header = answer.headers['content-security-policy']
  expect(typeof header).toBe('string')
  const directives = new Map<string, string[]>()
  for (const directive of (header as string).split(';')) {
    const [name, ...values] = directive.trim().split(/\s+/)
    if (name !== undefined && name !== '') directives.set(name, values)
  }
  return directives
}

/** The contents of each inline `<tag>` of a page. */
function inline(html: string, tag: 'style' | 'script'): string[] {
  return [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1] as string)
}

const hashSource = (content: string): string => `'sha256-${createHash('sha256').update(content, 'utf8').digest('base64')}'`

/** Attributes of a Set-Cookie after its name=value, as written. */
const attributesOf = (setCookie: string): string[] => setCookie.split(';').slice(1).map((a) => a.trim())

describe('dashboard sign-in page', () => {
  it('answers GET /cache/dashboard without credentials with 401 and the sign-in form', async () => {
    const service = fakeService()
    const { port } = await start(service)
    const answer = await send(port, 'GET', '/cache/dashboard')
    expect(answer.status).toBe(401)
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer/)
    expect(answer.body).toMatch(/^<!doctype html>/)
    expect(answer.body).toContain('<form method="post" action="sign-in">')
    expect(answer.body).toContain('name="token" type="password"')
    // A first visit is no error: no message is shown.
    expect(answer.body).not.toContain('role="alert"')
    expect(answer.headers['set-cookie']).toBeUndefined()
    expect(service.calls).toEqual([])
  })

  it('does not count a page opened without credentials as an auth failure', async () => {
    const clock = { t: 0, now: () => clock.t }
    const { port } = await start(fakeService(), { maxAuthFailures: 2, clock })
    for (let i = 0; i < 10; i++) expect((await send(port, 'GET', '/cache/dashboard')).status).toBe(401)
    // A route asked without a token does count: the limit is in force.
    expect((await send(port, 'GET', '/cache/stats')).status).toBe(401)
    expect((await send(port, 'GET', '/cache/stats')).status).toBe(401)
    const blocked = await send(port, 'GET', '/cache/dashboard')
    expect(blocked.status).toBe(429)
    expect(blocked.headers['retry-after']).toBe('60')
    expect(blocked.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(blocked.body).toContain('Too many wrong tokens from this address; retry in 60 s.')
  })

  it('serves the sign-in form under a CSP that admits its own style by hash and no script', async () => {
    const { port } = await start(fakeService())
    const answer = await send(port, 'GET', '/cache/dashboard')
    const policy = policyOf(answer)
    expect(policy.get('default-src')).toEqual(["'none'"])
    expect(policy.get('frame-ancestors')).toEqual(["'none'"])
    expect(policy.get('base-uri')).toEqual(["'none'"])
    expect(policy.get('form-action')).toEqual(["'self'"])
    const styles = inline(answer.body, 'style')
    expect(styles).toHaveLength(1)
    expect(policy.get('style-src')).toEqual(styles.map(hashSource))
    expect(inline(answer.body, 'script')).toEqual([])
    expect(policy.has('script-src')).toBe(false)
    expect(answer.headers['x-frame-options']).toBe('DENY')
    expect(answer.headers['referrer-policy']).toBe('same-origin')
    expect(answer.headers['x-content-type-options']).toBe('nosniff')
    expect(answer.headers['cache-control']).toBe('no-store')
  })
})

describe('dashboard sign-in', () => {
  it('trades the right token for a session cookie and a 303 to the dashboard', async () => {
    const started = await start(fakeService())
    const answer = await send(started.port, 'POST', '/cache/sign-in', { ...FORM, origin: started.origin }, form(TOKEN))
    expect(answer.status).toBe(303)
    expect(answer.headers.location).toBe('dashboard')
    expect(answer.headers['cache-control']).toBe('no-store')
    const cookie = setCookieOf(answer)
    expect(cookie).toMatch(/^tiercache_admin=[0-9a-z]+\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43};/)
    const attributes = attributesOf(cookie)
    expect(attributes).toContain('HttpOnly')
    expect(attributes).toContain('SameSite=Strict')
    expect(attributes).toContain('Path=/cache')
    expect(attributes).toContain('Max-Age=28800')
    // Plain HTTP and secureCookie 'auto': not Secure.
    expect(attributes).not.toContain('Secure')
  })

  it('accepts the token with surrounding spaces, and a charset on the content type', async () => {
    const started = await start(fakeService())
    const answer = await send(
      started.port,
      'POST',
      '/cache/sign-in',
      { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8', origin: started.origin },
      `other=1&token=${encodeURIComponent(` ${TOKEN} `)}`,
    )
    expect(answer.status).toBe(303)
  })

  it('marks the cookie Secure with secureCookie: true, never with false, and takes Max-Age from sessionTtl', async () => {
    const secure = await start(fakeService(), { secureCookie: true, sessionTtl: 90_000 })
    const on = attributesOf(setCookieOf(await send(secure.port, 'POST', '/cache/sign-in', { ...FORM, origin: secure.origin }, form(TOKEN))))
    expect(on).toContain('Secure')
    expect(on).toContain('Max-Age=90')
    const plain = await start(fakeService(), { secureCookie: false })
    const off = attributesOf(setCookieOf(await send(plain.port, 'POST', '/cache/sign-in', { ...FORM, origin: plain.origin }, form(TOKEN))))
    expect(off).not.toContain('Secure')
  })

  it('sets Path to the prefix under basePath', async () => {
    const started = await start(fakeService(), { basePath: '/admin' })
    const answer = await send(started.port, 'POST', '/admin/cache/sign-in', { ...FORM, origin: started.origin }, form(TOKEN))
    expect(answer.status).toBe(303)
    const attributes = attributesOf(setCookieOf(answer))
    expect(attributes).toContain('Path=/admin/cache')
    expect(attributes).not.toContain('Path=/cache')
  })

  it('sets Path under the mount an express-like host stripped from req.url', async () => {
    const started = await start(fakeService(), {}, (req) => {
      const original = req.url ?? '/'
      ;(req as IncomingMessage & { originalUrl?: string }).originalUrl = original
      req.url = original.replace(/^\/ops/, '')
    })
    const answer = await send(started.port, 'POST', '/ops/cache/sign-in', { ...FORM, origin: started.origin }, form(TOKEN))
    expect(answer.status).toBe(303)
    expect(attributesOf(setCookieOf(answer))).toContain('Path=/ops/cache')
  })

  it('authenticates GET stats and GET dashboard with the cookie', async () => {
    const service = fakeService()
    const started = await start(service, { dashboardRefresh: 1500 })
    const cookie = await signIn(started)
    const stats = await send(started.port, 'GET', '/cache/stats', { cookie })
    expect(stats.status).toBe(200)
    expect(JSON.parse(stats.body)).toEqual({ families: { 'task:status': { entries: 3 } } })
    const page = await send(started.port, 'GET', '/cache/dashboard', { cookie: `theme=dark; ${cookie}` })
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.body).toContain('<body data-refresh="1500">')
    expect(page.body).toContain('<form method="post" action="sign-out">')
    expect(service.calls).toEqual(['stats'])
  })

  it('serves the dashboard under a CSP whose hashes are those of its inline style and script', async () => {
    const started = await start(fakeService())
    const page = await send(started.port, 'GET', '/cache/dashboard', bearer)
    expect(page.status).toBe(200)
    const policy = policyOf(page)
    expect(policy.get('default-src')).toEqual(["'none'"])
    expect(policy.get('frame-ancestors')).toEqual(["'none'"])
    expect(policy.get('connect-src')).toEqual(["'self'"])
    expect(policy.get('form-action')).toEqual(["'self'"])
    const styles = inline(page.body, 'style')
    const scripts = inline(page.body, 'script')
    expect(styles).toHaveLength(1)
    expect(scripts).toHaveLength(1)
    expect(scripts[0]?.length).toBeGreaterThan(100)
    expect(policy.get('style-src')).toEqual(styles.map(hashSource))
    expect(policy.get('script-src')).toEqual(scripts.map(hashSource))
    // No inline handler, which the policy would block anyway.
    expect(page.body).not.toMatch(/\son[a-z]+=/i)
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(page.headers['referrer-policy']).toBe('same-origin')
    expect(page.headers['cache-control']).toBe('no-store')
  })

  it('refuses a sign-in form posted from another origin, or without Origin, with 403 and sets no cookie', async () => {
    const clock = { t: 0, now: () => clock.t }
    const started = await start(fakeService(), { maxAuthFailures: 1, clock })
    for (const headers of [FORM, { ...FORM, origin: 'http://evil.example' }, { ...FORM, origin: 'null' }]) {
      const answer = await send(started.port, 'POST', '/cache/sign-in', headers, form(TOKEN))
      expect(answer.status).toBe(403)
      expect(answer.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(answer.body).toContain('Sign in from the dashboard page of this server.')
      expect(answer.headers['set-cookie']).toBeUndefined()
    }
    // Not counted as failures: with a limit of one, the right sign-in still works.
    expect((await send(started.port, 'POST', '/cache/sign-in', { ...FORM, origin: started.origin }, form(TOKEN))).status).toBe(303)
  })

  it('answers a wrong token with 401 and counts it, until 429', async () => {
    const clock = { t: 0, now: () => clock.t }
    const started = await start(fakeService(), { maxAuthFailures: 3, clock })
    const headers = { ...FORM, origin: started.origin }
    for (const token of ['wrong-token-0123456789', '', `${TOKEN}x`]) {
      const answer = await send(started.port, 'POST', '/cache/sign-in', headers, form(token))
      expect(answer.status, token).toBe(401)
      expect(answer.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(answer.body).toContain('Wrong token.')
      expect(answer.headers['set-cookie']).toBeUndefined()
    }
    // Blocked now, even with the right token.
    const blocked = await send(started.port, 'POST', '/cache/sign-in', headers, form(TOKEN))
    expect(blocked.status).toBe(429)
    expect(blocked.headers['retry-after']).toBe('60')
    expect(blocked.headers['set-cookie']).toBeUndefined()
    expect(blocked.body).toContain('Too many wrong tokens')
    clock.t += 60_000
    expect((await send(started.port, 'POST', '/cache/sign-in', headers, form(TOKEN))).status).toBe(303)
  })

  it('answers 415 to a sign-in post that is not a urlencoded form', async () => {
    const started = await start(fakeService())
    for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencodedx']) {
      const answer = await send(started.port, 'POST', '/cache/sign-in', { 'content-type': type, origin: started.origin }, form(TOKEN))
      expect(answer.status, type).toBe(415)
      expect(codeOf(answer)).toBe('E_UNSUPPORTED_MEDIA_TYPE')
      expect(answer.headers['set-cookie']).toBeUndefined()
    }
    const untyped = await send(started.port, 'POST', '/cache/sign-in', { origin: started.origin }, form(TOKEN))
    expect(untyped.status).toBe(415)
  })

  it('answers 405 with allow: POST to other methods on sign-in and sign-out', async () => {
    const started = await start(fakeService())
    for (const [method, path] of [['GET', '/cache/sign-in'], ['DELETE', '/cache/sign-in'], ['GET', '/cache/sign-out']] as const) {
      const answer = await send(started.port, method, path, { origin: started.origin })
      expect(answer.status, `${method} ${path}`).toBe(405)
      expect(answer.headers.allow).toBe('POST')
      expect(codeOf(answer)).toBe('E_METHOD_NOT_ALLOWED')
    }
  })
})

describe('dashboard changes with the session cookie', () => {
  it('refuses a change without Origin or from another origin with 403 E_CROSS_ORIGIN', async () => {
    const service = fakeService()
    const started = await start(service)
    const cookie = await signIn(started)
    for (const [method, path] of [['POST', '/cache/warmup'], ['POST', '/cache/cleanup'], ['DELETE', '/cache'], ['DELETE', '/cache/tasks/t-1'], ['DELETE', '/cache/hosts/h-1']] as const) {
      for (const extra of [{}, { origin: 'http://evil.example' }, { origin: 'null' }, { origin: `http://127.0.0.1:${started.port + 1}` }] as Record<string, string>[]) {
        const answer = await send(started.port, method, path, { cookie, ...extra })
        expect(answer.status, `${method} ${path} ${JSON.stringify(extra)}`).toBe(403)
        expect(codeOf(answer)).toBe('E_CROSS_ORIGIN')
      }
    }
    expect(service.calls).toEqual([])
  })

  it('accepts a change from its own origin, and GET from anywhere', async () => {
    const service = fakeService()
    const started = await start(service)
    const cookie = await signIn(started)
    const warm = await send(started.port, 'POST', '/cache/warmup', { cookie, origin: started.origin })
    expect(warm.status).toBe(200)
    expect(JSON.parse(warm.body)).toEqual({ ok: true, warmup: { loaded: 4 } })
    expect((await send(started.port, 'DELETE', '/cache/tasks/t-1', { cookie, origin: started.origin })).status).toBe(200)
    expect((await send(started.port, 'GET', '/cache/stats', { cookie, origin: 'http://evil.example' })).status).toBe(200)
    expect(service.calls).toEqual(['warmup', 'task:t-1', 'stats'])
  })

  it('accepts a change from a listed allowedOrigin, and only from the list', async () => {
    const service = fakeService()
    const started = await start(service, { allowedOrigins: ['https://ops.example.com'] })
    // The sign-in form too is held to the list.
    expect((await send(started.port, 'POST', '/cache/sign-in', { ...FORM, origin: started.origin }, form(TOKEN))).status).toBe(403)
    const signedIn = await send(started.port, 'POST', '/cache/sign-in', { ...FORM, origin: 'https://ops.example.com' }, form(TOKEN))
    expect(signedIn.status).toBe(303)
    const cookie = pairOf(setCookieOf(signedIn))
    const ok = await send(started.port, 'DELETE', '/cache', { cookie, origin: 'https://ops.example.com' })
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toEqual({ ok: true, invalidated: 'all' })
    const own = await send(started.port, 'DELETE', '/cache', { cookie, origin: started.origin })
    expect(own.status).toBe(403)
    expect(codeOf(own)).toBe('E_CROSS_ORIGIN')
    expect(service.calls).toEqual(['all'])
  })

  it('accepts a bearer-token change without Origin, or with any', async () => {
    const service = fakeService()
    const started = await start(service)
    const answer = await send(started.port, 'DELETE', '/cache/hosts/h-0001', bearer)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual({ ok: true, invalidated: { hostId: 'h-0001' } })
    expect((await send(started.port, 'POST', '/cache/cleanup', { ...bearer, origin: 'http://evil.example' })).status).toBe(200)
    expect(service.calls).toEqual(['host:h-0001', 'cleanup'])
  })

  it('lets a wrong bearer header decide over a valid cookie', async () => {
    const service = fakeService()
    const started = await start(service)
    const cookie = await signIn(started)
    const answer = await send(started.port, 'GET', '/cache/stats', { cookie, authorization: 'Bearer wrong-token-0123456789' })
    expect(answer.status).toBe(401)
    expect(codeOf(answer)).toBe('E_UNAUTHORIZED')
    expect(service.calls).toEqual([])
  })
})

describe('dashboard sign-out', () => {
  it('revokes the session and clears the cookie; the old cookie then meets "The session ended"', async () => {
    const service = fakeService()
    const clock = { t: 0, now: () => clock.t }
    const started = await start(service, { maxAuthFailures: 2, clock })
    const cookie = await signIn(started)
    expect((await send(started.port, 'GET', '/cache/dashboard', { cookie })).status).toBe(200)
    const out = await send(started.port, 'POST', '/cache/sign-out', { cookie, origin: started.origin })
    expect(out.status).toBe(303)
    expect(out.headers.location).toBe('dashboard')
    const cleared = setCookieOf(out)
    expect(pairOf(cleared)).toBe('tiercache_admin=')
    expect(attributesOf(cleared)).toEqual(expect.arrayContaining(['Max-Age=0', 'Path=/cache', 'HttpOnly', 'SameSite=Strict']))
    // A copy of the old cookie is refused now, as a session that ended (not counted as a failure).
    for (let i = 0; i < 4; i++) {
      const page = await send(started.port, 'GET', '/cache/dashboard', { cookie })
      expect(page.status).toBe(401)
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(page.body).toContain('The session ended: sign in again.')
      expect(page.body).toContain('<form method="post" action="sign-in">')
      const stats = await send(started.port, 'GET', '/cache/stats', { cookie })
      expect(stats.status).toBe(401)
      expect(codeOf(stats)).toBe('E_UNAUTHORIZED')
    }
    expect(service.calls).toEqual([])
    // A new sign-in works, and gives a new session.
    const again = await signIn(started)
    expect(again).not.toBe(cookie)
    expect((await send(started.port, 'GET', '/cache/stats', { cookie: again })).status).toBe(200)
  })

  it('refuses a sign-out from another origin, and the session lives on', async () => {
    const started = await start(fakeService())
    const cookie = await signIn(started)
    for (const extra of [{}, { origin: 'http://evil.example' }] as Record<string, string>[]) {
      const answer = await send(started.port, 'POST', '/cache/sign-out', { cookie, ...extra })
      expect(answer.status).toBe(403)
      expect(codeOf(answer)).toBe('E_CROSS_ORIGIN')
      expect(answer.headers['set-cookie']).toBeUndefined()
    }
    expect((await send(started.port, 'GET', '/cache/stats', { cookie })).status).toBe(200)
  })

  it('clears the cookie even without a session', async () => {
    const started = await start(fakeService())
    const out = await send(started.port, 'POST', '/cache/sign-out', { origin: started.origin })
    expect(out.status).toBe(303)
    expect(pairOf(setCookieOf(out))).toBe('tiercache_admin=')
  })
})

describe('dashboard with a tampered cookie', () => {
  it('answers 401 "Wrong token." and counts it as a failure, until 429', async () => {
    const service = fakeService()
    const clock = { t: 0, now: () => clock.t }
    const started = await start(service, { maxAuthFailures: 2, clock })
    const cookie = await signIn(started)
    // One character of the mac changed (the first one: all of its bits count).
    const dot = cookie.lastIndexOf('.')
    const tampered = cookie.slice(0, dot + 1) + (cookie[dot + 1] === 'A' ? 'B' : 'A') + cookie.slice(dot + 2)
    expect(tampered).not.toBe(cookie)
    const page = await send(started.port, 'GET', '/cache/dashboard', { cookie: tampered })
    expect(page.status).toBe(401)
    expect(page.body).toContain('Wrong token.')
    const stats = await send(started.port, 'GET', '/cache/stats', { cookie: tampered })
    expect(stats.status).toBe(401)
    // Two failures: the address is blocked, the genuine cookie included.
    const blocked = await send(started.port, 'GET', '/cache/stats', { cookie })
    expect(blocked.status).toBe(429)
    expect(codeOf(blocked)).toBe('E_TOO_MANY_ATTEMPTS')
    expect(service.calls).toEqual([])
  })

  it('answers 401 to a cookie signed with another token', async () => {
    const otherToken = 'another-token-0123456789abcdef'
    const other = await start(fakeService(), { token: otherToken })
    const foreign = await signIn(other, otherToken)
    const started = await start(fakeService())
    const page = await send(started.port, 'GET', '/cache/dashboard', { cookie: foreign })
    expect(page.status).toBe(401)
    expect(page.body).toContain('Wrong token.')
    // The same token in another handler accepts the session.
    const twin = await start(fakeService())
    const twinCookie = await signIn(twin)
    expect((await send(started.port, 'GET', '/cache/stats', { cookie: twinCookie })).status).toBe(200)
  })
})

describe('dashboard options', () => {
  it('refuses invalid session, cookie, origin and refresh options, naming the field', () => {
    const bad: [Partial<AdminHandlerOptions>, RegExp][] = [
      [{ sessionTtl: 1000 }, /^sessionTtl: /],
      [{ sessionTtl: 59_999 }, /^sessionTtl: /],
      [{ sessionTtl: 30 * 86_400_000 + 1 }, /^sessionTtl: /],
      [{ sessionTtl: 60_000.5 }, /^sessionTtl: /],
      [{ secureCookie: 'yes' as unknown as boolean }, /^secureCookie: /],
      [{ secureCookie: 1 as unknown as boolean }, /^secureCookie: /],
      [{ allowedOrigins: ['https://ops.example.com/path'] }, /^allowedOrigins\.0: /],
      [{ allowedOrigins: ['https://ops.example.com', ''] }, /^allowedOrigins\.1: /],
      [{ allowedOrigins: ['https://ops.example.com/'] }, /^allowedOrigins\.0: /],
      [{ allowedOrigins: [] }, /^allowedOrigins: /],
      [{ allowedOrigins: 'https://ops.example.com' as unknown as string[] }, /^allowedOrigins: /],
      [{ dashboardRefresh: 100 }, /^dashboardRefresh: /],
      [{ dashboardRefresh: 499 }, /^dashboardRefresh: /],
      [{ dashboardRefresh: 3_600_001 }, /^dashboardRefresh: /],
    ]
    for (const [options, field] of bad) {
      const make = () => createAdminHandler(fakeService(), { token: TOKEN, ...options })
      expect(make, JSON.stringify(options)).toThrow(InvalidOptionsError)
      expect(make, JSON.stringify(options)).toThrow(field)
    }
  })

  it('accepts the limits themselves', () => {
    const good: Partial<AdminHandlerOptions>[] = [
      { sessionTtl: 60_000 },
      { sessionTtl: 30 * 86_400_000 },
      { secureCookie: true },
      { secureCookie: false },
      { secureCookie: 'auto' },
      { allowedOrigins: ['https://ops.example.com', 'http://localhost:8080'] },
      { dashboardRefresh: 500 },
      { dashboardRefresh: 3_600_000 },
    ]
    for (const options of good) {
      expect(() => createAdminHandler(fakeService(), { token: TOKEN, ...options }), JSON.stringify(options)).not.toThrow()
    }
  })
})
