import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { InvalidOptionsError } from '@tiercache/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createAdminHandler, type AdminHandlerOptions, type TaskCacheAdmin } from '@tiercache/task'
import { fakeService, TOKEN } from './admin-fakes.js'

interface Started {
  server: Server
  port: number
  base: string
  /** Resolves once every connection has ended: a request the handler left hanging would hold it. */
  close(): Promise<void>
}

/** Serves the handler; `onRequest` sees each request after the handler has taken it. */
async function start(
  service: TaskCacheAdmin,
  options: Partial<AdminHandlerOptions> = {},
  onRequest?: (req: IncomingMessage) => void,
): Promise<Started> {
  const handler = createAdminHandler(service, { token: TOKEN, ...options })
  const server: Server = createServer((req, res) => {
    handler(req, res)
    onRequest?.(req)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let closed: Promise<void> | undefined
  const close = () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())))
  onTestFinished(close)
  const port = (server.address() as AddressInfo).port
  return { server, port, base: `http://127.0.0.1:${port}`, close }
}

async function serve(service: TaskCacheAdmin, options: Partial<AdminHandlerOptions> = {}): Promise<string> {
  return (await start(service, options)).base
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

interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

/** What the server sent on a raw connection, read until the server closed it. */
interface RawConnection {
  write(text: string): void
  destroy(): void
  /** Resolves once the server has closed the connection (a hung connection never resolves). */
  answer: Promise<RawAnswer>
}

function parseAnswer(text: string): RawAnswer {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = (end === -1 ? text : text.slice(0, end)).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: end === -1 ? '' : text.slice(end + 4) }
}

/** A raw socket, for what fetch cannot send: slow or unending bodies, odd targets and methods. */
function rawConnection(port: number): RawConnection {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (received += chunk))
  const answer = new Promise<RawAnswer>((resolve) => {
    // A reset after the answer (the server closing on an unread body) still leaves the answer.
    socket.on('error', () => {})
    socket.on('close', () => resolve(parseAnswer(received)))
  })
  return { write: (text) => socket.write(text), destroy: () => socket.destroy(), answer }
}

/** The head of a request; `headers` are `name: value` lines. */
const head = (method: string, target: string, headers: string[] = []): string =>
  [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, '', ''].join('\r\n')

const AUTH = `Authorization: Bearer ${TOKEN}`

/** Sends one request that asks the server to close after it, and reads the answer. */
function raw(port: number, text: string): Promise<RawAnswer> {
  const connection = rawConnection(port)
  connection.write(text)
  return connection.answer
}

const codeOf = (answer: RawAnswer): string => (JSON.parse(answer.body) as { error: { code: string } }).error.code

const activeTimeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('admin handler against hostile requests', () => {
  it('answers 413 at once to a declared content-length above maxBodyBytes, without reading, and closes', async () => {
    const service = fakeService()
    const { port } = await start(service)
    // No body follows: an answer at all shows it was not awaited (else the 5 s body timeout, 408).
    const answer = await raw(port, head('POST', '/cache/warmup', [AUTH, 'Content-Length: 1025']))
    expect(answer.status).toBe(413)
    expect(codeOf(answer)).toBe('E_BODY_TOO_LARGE')
    expect(answer.headers.connection).toBe('close')
    const limited = await start(service, { maxBodyBytes: 0 })
    expect((await raw(limited.port, head('POST', '/cache/warmup', [AUTH, 'Content-Length: 1']))).status).toBe(413)
    expect(service.calls).toEqual([])
  })

  it('answers 413 as soon as a chunked body passes the limit, and closes', async () => {
    const service = fakeService()
    const { port } = await start(service)
    const chunk = `200\r\n${'x'.repeat(512)}\r\n`
    // Three chunks of 512 bytes and no final chunk: the body never ends.
    const answer = await raw(port, head('POST', '/cache/warmup', [AUTH, 'Transfer-Encoding: chunked']) + chunk.repeat(3))
    expect(answer.status).toBe(413)
    expect(codeOf(answer)).toBe('E_BODY_TOO_LARGE')
    expect(answer.headers.connection).toBe('close')
    expect(service.calls).toEqual([])
  })

  it('ignores a body within the limit, and acts only once it has ended', async () => {
    const service = fakeService()
    let firstChunk!: () => void
    const seen = new Promise<void>((resolve) => (firstChunk = resolve))
    const { port, base } = await start(service, {}, (req) => req.once('data', () => firstChunk()))
    const connection = rawConnection(port)
    connection.write(head('GET', '/cache/stats', [AUTH, 'Content-Length: 5', 'Connection: close']) + 'ab')
    await seen
    expect(service.calls).toEqual([])
    connection.write('cde')
    expect((await connection.answer).status).toBe(200)
    expect(service.calls).toEqual(['stats'])
    // Exactly the limit, declared or chunked, is accepted.
    const exact = await raw(port, head('POST', '/cache/warmup', [AUTH, 'Content-Length: 1024', 'Connection: close']) + 'x'.repeat(1024))
    expect(exact.status).toBe(200)
    const chunked = await raw(port, head('POST', '/cache/cleanup', [AUTH, 'Transfer-Encoding: chunked', 'Connection: close']) + '5\r\nhello\r\n0\r\n\r\n')
    expect(chunked.status).toBe(200)
    expect((await fetch(`${base}/cache/warmup`, { method: 'POST', headers: auth, body: 'x'.repeat(100) })).status).toBe(200)
    expect(service.calls).toEqual(['stats', 'warmup', 'cleanup', 'warmup'])
  })

  it('does not wait for a body a framework has read before the handler', async () => {
    const service = fakeService()
    const handler = createAdminHandler(service, { token: TOKEN })
    // As a body parser does: read the whole body, then hand the request on.
    const server = createServer((req, res) => req.resume().on('end', () => handler(req, res)))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const res = await fetch(`${base}/cache/warmup`, { method: 'POST', headers: auth, body: '{}' })
    expect(res.status).toBe(200)
    expect(service.calls).toEqual(['warmup'])
  })

  it('answers 408 to a body that does not end within bodyTimeout, and closes', async () => {
    const service = fakeService()
    const { port } = await start(service, { bodyTimeout: 20 })
    for (const request of [
      head('DELETE', '/cache', [AUTH, 'Content-Length: 10']) + 'abc',
      head('DELETE', '/cache', [AUTH, 'Transfer-Encoding: chunked']) + '3\r\nabc\r\n',
    ]) {
      const answer = await raw(port, request)
      expect(answer.status).toBe(408)
      expect(codeOf(answer)).toBe('E_BODY_TIMEOUT')
      expect(answer.headers.connection).toBe('close')
    }
    expect(service.calls).toEqual([])
  })

  it('clears the body timer whatever the outcome, so the server closes with no timer left', async () => {
    const service = fakeService()
    let gone!: () => void
    const aborted = new Promise<void>((resolve) => (gone = resolve))
    let firstChunk!: () => void
    const seen = new Promise<void>((resolve) => (firstChunk = resolve))
    const before = activeTimeouts()
    // A minute-long timer: one left behind would still be pending when the server has closed.
    const { port, close } = await start(service, { bodyTimeout: 60_000 }, (req) => {
      if (req.url === '/cache/warmup') {
        req.once('data', () => firstChunk())
        req.once('close', () => gone())
      }
    })
    expect((await raw(port, head('GET', '/cache/stats', [AUTH, 'Connection: close']))).status).toBe(200)
    expect((await raw(port, head('GET', '/cache/stats', ['Connection: close']))).status).toBe(401)
    expect((await raw(port, head('GET', '/cache/stats', [AUTH, 'Transfer-Encoding: chunked']) + `400\r\n${'x'.repeat(1024)}\r\n1\r\nx\r\n`)).status).toBe(413)
    // The client goes away halfway through a body: no answer, no call, no timer.
    const connection = rawConnection(port)
    connection.write(head('POST', '/cache/warmup', [AUTH, 'Content-Length: 10']) + 'abc')
    await seen
    connection.destroy()
    await aborted
    await close()
    expect(activeTimeouts()).toBe(before)
    expect(service.calls).toEqual(['stats'])
  })

  it('leaves a malformed content-length or method to node:http, which answers 400 and keeps serving', async () => {
    const service = fakeService()
    const { port, base } = await start(service)
    for (const request of [
      head('DELETE', '/cache', [AUTH, 'Content-Length: abc']),
      head('DELETE', '/cache', [AUTH, 'Content-Length: -1']),
      head('DELETE', '/cache', [AUTH, 'Content-Length: 1', 'Content-Length: 2']),
      head('FOO', '/cache', [AUTH]),
    ]) {
      const answer = await raw(port, request)
      expect(answer.status, request.split('\r\n').join(' | ')).toBe(400)
    }
    expect(service.calls).toEqual([])
    expect((await fetch(`${base}/cache/stats`, { headers: auth })).status).toBe(200)
  })

  it('answers 405 with allow to any other method on a known path, HEAD, OPTIONS, TRACE and PROPFIND included', async () => {
    const service = fakeService()
    const { port, base } = await start(service)
    const cases: [string, string, string][] = [
      ['HEAD', '/cache/stats', 'GET'],
      ['OPTIONS', '/cache/warmup', 'POST'],
      ['PATCH', '/cache/hosts/h-0001', 'DELETE'],
      ['PUT', '/cache/tasks/t-1', 'DELETE'],
      ['DELETE', '/cache/stats', 'GET'],
      ['GET', '/cache', 'DELETE'],
      ['GET', '/cache/cleanup', 'POST'],
    ]
    for (const [method, path, allow] of cases) {
      const res = await fetch(base + path, { method, headers: auth })
      expect(res.status, `${method} ${path}`).toBe(405)
      expect(res.headers.get('allow')).toBe(allow)
      expect(res.headers.get('content-type')).toMatch(/application\/json/)
      // A HEAD answer carries no body; the others say why.
      if (method !== 'HEAD') expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_METHOD_NOT_ALLOWED')
    }
    for (const method of ['TRACE', 'PROPFIND']) {
      const answer = await raw(port, head(method, '/cache/stats', [AUTH, 'Connection: close']))
      expect(answer.status, method).toBe(405)
      expect(answer.headers.allow).toBe('GET')
      expect(codeOf(answer)).toBe('E_METHOD_NOT_ALLOWED')
    }
    expect(service.calls).toEqual([])
  })

  it('answers 404 to unknown or disguised paths under the prefix, and passes only the others to next()', async () => {
    const service = fakeService()
    const handler = createAdminHandler(service, { token: TOKEN })
    const server = createServer((req, res) => handler(req, res, () => res.writeHead(418).end()))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as AddressInfo).port
    for (const target of ['/cache/nope', '/cache/tasks/../stats', '/cache/hosts/../../cache/stats', '/cache/./stats', '/cache//stats', '/cache/%73tats', '/cache/stats/', '/cache/tasks/a/b']) {
      const answer = await raw(port, head('GET', target, [AUTH, 'Connection: close']))
      expect(answer.status, target).toBe(404)
      expect(codeOf(answer)).toBe('E_NOT_FOUND')
    }
    // Unknown paths under the prefix still need the token first, as known ones do.
    expect((await raw(port, head('GET', '/cache/nope', ['Connection: close']))).status).toBe(401)
    for (const target of ['/other', '/cachet/stats', '/']) {
      expect((await raw(port, head('GET', target, ['Connection: close']))).status, target).toBe(418)
    }
    expect(service.calls).toEqual([])
  })

  it('answers 400 to ids with traversal, glob, separator or control characters, and never calls the service', async () => {
    const service = fakeService()
    const { port } = await start(service)
    const targets = [
      '/cache/tasks/..%2F..%2Fetc',
      '/cache/tasks/%2E%2E',
      '/cache/tasks/%2e%2E%2f',
      '/cache/tasks/..',
      '/cache/tasks/.',
      '/cache/tasks/.hidden',
      '/cache/tasks/a*',
      '/cache/hosts/%5Ba-z%5D',
      '/cache/tasks/?',
      '/cache/tasks/%3F',
      '/cache/tasks/a\\b',
      '/cache/tasks/a%5Cb',
      '/cache/tasks/a%2Fb',
      '/cache/tasks/%00',
      '/cache/tasks/a%00b',
      '/cache/tasks/a%0D%0ASet-Cookie:%20x',
      '/cache/tasks/a#b',
      '/cache/tasks/%E0%A4%A',
      '/cache/tasks/%',
      `/cache/hosts/${'x'.repeat(129)}`,
    ]
    for (const target of targets) {
      const answer = await raw(port, head('DELETE', target, [AUTH, 'Connection: close']))
      expect(answer.status, target).toBe(400)
      expect(codeOf(answer), target).toBe('E_INVALID_ID')
      expect(answer.headers['set-cookie']).toBeUndefined()
    }
    expect(service.calls).toEqual([])
  })

  it('answers 414 to a URL over 2048 characters, a 10 KB id included, token or not, and closes', async () => {
    const service = fakeService()
    const base = await serve(service)
    for (const path of [`/cache/tasks/${'x'.repeat(10_240)}`, `/cache/stats?${'q'.repeat(2048)}`]) {
      for (const headers of [auth, {}]) {
        const res = await fetch(base + path, { method: 'DELETE', headers })
        expect(res.status).toBe(414)
        expect(res.headers.get('connection')).toBe('close')
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_URI_TOO_LONG')
      }
    }
    const longest = '/cache/stats?q='.padEnd(2048, 'q')
    expect((await fetch(base + longest, { headers: auth })).status).toBe(200)
    expect(service.calls).toEqual(['stats'])
  })

  it('answers 429 with retry-after once an address has failed maxAuthFailures times, right token or not, until the window passes', async () => {
    const service = fakeService()
    const clock = { t: 5_000, now: () => clock.t }
    const base = await serve(service, { maxAuthFailures: 3, authFailureWindow: 60_000, clock })
    const wrong = { authorization: 'Bearer wrong-token-0123456789' }
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/cache/stats`, { headers: i === 1 ? {} : wrong })).status).toBe(401)
    for (const headers of [auth, wrong, {}]) {
      const res = await fetch(`${base}/cache/stats`, { headers })
      expect(res.status).toBe(429)
      expect(res.headers.get('retry-after')).toBe('60')
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_TOO_MANY_ATTEMPTS')
    }
    clock.t += 59_500
    const late = await fetch(`${base}/cache/stats`, { headers: auth })
    expect(late.status).toBe(429)
    expect(late.headers.get('retry-after')).toBe('1')
    clock.t += 500
    expect((await fetch(`${base}/cache/stats`, { headers: auth })).status).toBe(200)
    // The window starts again: two more failures are still answered 401.
    for (let i = 0; i < 2; i++) expect((await fetch(`${base}/cache/stats`, { headers: wrong })).status).toBe(401)
    expect((await fetch(`${base}/cache/stats`, { headers: auth })).status).toBe(200)
    expect(service.calls).toEqual(['stats', 'stats'])
  })

  it('blocks after 10 failures by default', async () => {
    const service = fakeService()
    const base = await serve(service)
    for (let i = 0; i < 10; i++) expect((await fetch(`${base}/cache`, { method: 'DELETE', headers: { authorization: 'Bearer nope' } })).status).toBe(401)
    const res = await fetch(`${base}/cache`, { method: 'DELETE', headers: auth })
    expect(res.status).toBe(429)
    const seconds = Number(res.headers.get('retry-after'))
    expect(seconds).toBeGreaterThanOrEqual(1)
    expect(seconds).toBeLessThanOrEqual(60)
    expect(service.calls).toEqual([])
  })

  it('answers 500 without details to an exception inside the handler, and reports it', async () => {
    const cases: { name: string; options?: Partial<AdminHandlerOptions>; stats?: unknown }[] = [
      { name: 'a statistics value JSON cannot hold', stats: { entries: 1n } },
      { name: 'a clock that throws', options: { clock: { now: () => { throw new Error('clock secret') } } } },
    ]
    for (const { name, options, stats } of cases) {
      const service = fakeService()
      if (stats !== undefined) service.getCacheStatistics = async () => stats
      const errors: unknown[] = []
      const base = await serve(service, { ...options, onError: (e) => errors.push(e) })
      const res = await fetch(`${base}/cache/stats`, { headers: auth })
      expect(res.status, name).toBe(500)
      const text = await res.text()
      expect(JSON.parse(text)).toEqual({ error: { code: 'E_INTERNAL', message: expect.any(String) } })
      expect(text).not.toMatch(/secret|BigInt|\bat\b/)
      expect(errors, name).toHaveLength(1)
    }
  })

  it('answers 500 to a header that throws when read, and the host keeps serving', async () => {
    const service = fakeService()
    const errors: unknown[] = []
    const handler = createAdminHandler(service, { token: TOKEN, onError: (e) => errors.push(e) })
    const server = createServer((req, res) => {
      // Stands for a header a framework's parser rejects on access.
      if (req.headers['x-poison'] !== undefined) {
        Object.defineProperty(req.headers, 'authorization', {
          get() {
            throw new TypeError('malformed header: secret')
          },
        })
      }
      handler(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const res = await fetch(`${base}/cache/stats`, { headers: { ...auth, 'x-poison': '1' } })
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).not.toMatch(/secret|TypeError/)
    expect(errors).toHaveLength(1)
    expect((await fetch(`${base}/cache/stats`, { headers: auth })).status).toBe(200)
  })

  it('marks every answer no-store and nosniff', async () => {
    const service = fakeService()
    const clock = { t: 0, now: () => clock.t }
    const { port, base } = await start(service, { maxAuthFailures: 1, clock })
    const answers: { status: number; get(name: string): string | undefined }[] = []
    const fetched = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(base + path, init)
      await res.arrayBuffer()
      answers.push({ status: res.status, get: (name) => res.headers.get(name) ?? undefined })
    }
    await fetched('/cache/stats', { headers: auth })
    await fetched('/cache/tasks/%2E%2E', { method: 'DELETE', headers: auth })
    await fetched('/cache/nope', { headers: auth })
    await fetched('/cache/stats', { method: 'HEAD', headers: auth })
    await fetched(`/cache/${'x'.repeat(3000)}`, { headers: auth })
    const tooLarge = await raw(port, head('POST', '/cache/warmup', [AUTH, 'Content-Length: 5000']))
    answers.push({ status: tooLarge.status, get: (name) => tooLarge.headers[name] })
    await fetched('/cache/stats')
    await fetched('/cache/stats', { headers: auth })
    expect(answers.map((a) => a.status)).toEqual([200, 404, 404, 405, 414, 413, 401, 429])
    for (const answer of answers) {
      expect(answer.get('cache-control'), String(answer.status)).toBe('no-store')
      expect(answer.get('x-content-type-options'), String(answer.status)).toBe('nosniff')
    }
  })

  it('refuses bad limits, naming the option', () => {
    const bad: [Partial<AdminHandlerOptions>, RegExp][] = [
      [{ maxBodyBytes: -1 }, /maxBodyBytes/],
      [{ maxBodyBytes: 1.5 }, /maxBodyBytes/],
      [{ maxBodyBytes: '1024' as unknown as number }, /maxBodyBytes/],
      [{ bodyTimeout: 0 }, /bodyTimeout/],
      [{ bodyTimeout: Number.POSITIVE_INFINITY }, /bodyTimeout/],
      [{ bodyTimeout: 2 ** 31 }, /bodyTimeout/],
      [{ maxAuthFailures: 0 }, /maxAuthFailures/],
      [{ authFailureWindow: Number.NaN }, /authFailureWindow/],
      [{ clock: {} as { now(): number } }, /clock/],
      [{ clock: Date.now as unknown as { now(): number } }, /clock/],
    ]
    for (const [options, field] of bad) {
      expect(() => createAdminHandler(fakeService(), { token: TOKEN, ...options }), field.source).toThrow(InvalidOptionsError)
      expect(() => createAdminHandler(fakeService(), { token: TOKEN, ...options }), field.source).toThrow(field)
    }
    expect(() => createAdminHandler(fakeService(), { token: TOKEN, maxBodyBytes: 0, bodyTimeout: 1, maxAuthFailures: 1, authFailureWindow: 1, clock: Date })).not.toThrow()
  })
})
