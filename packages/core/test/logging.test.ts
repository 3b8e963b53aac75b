import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  type CacheEvents,
  type InvalidationBus,
  L2TimeoutError,
  L2UnavailableError,
  type Logger,
  type ReceivedInvalidation,
  type RemoteStore,
  createTieredCache,
  memoryBus,
  memoryBusNetwork,
  memoryStore,
} from '../src/index.js'
import { cacheFor, deferred, fakeClock, nextEvent } from './helpers.js'

type Level = 'debug' | 'info' | 'warn' | 'error'

interface Line {
  readonly level: Level
  readonly msg: string | undefined
  readonly obj: Record<string, unknown>
}

/** A pino-shaped logger that keeps every line, in order. */
function recordingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = []
  const at = (level: Level) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, msg: obj, obj: {} } : { level, msg, obj: obj as Record<string, unknown> })
  }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

/** A memory store whose named methods reject with `cause` while `failing.on` is true. */
function failingStore(methods: readonly (keyof RemoteStore)[], cause: Error) {
  const inner = memoryStore()
  const failing = { on: true }
  const store: RemoteStore = { ...inner }
  for (const method of methods) {
    const original = (inner[method] as (...args: unknown[]) => Promise<unknown>).bind(inner)
    ;(store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => (failing.on ? Promise.reject(cause) : original(...args))
  }
  return { store, inner, failing }
}

// `l1.ttl` keeps the one-off TIERCACHE_L1_UNBOUNDED warning (asserted in lifecycle.test.ts) out.
const quiet = { l1: { ttl: '1m' } } as const

describe('L2 error log lines', () => {
  it('a failed read: one warn line naming the operation and the cache, with the wrapped error', async () => {
    const cause = new Error('connection reset')
    const { store } = failingStore(['get'], cause)
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ ...quiet, l2: store, logger, name: 'orders', clock: fakeClock(), breaker: { volumeThreshold: 100 } })
    expect(await cache.get('k')).toBeUndefined()
    expect(lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache L2 call failed', obj: { err: expect.any(L2UnavailableError), operation: 'get', cache: 'orders' } },
    ])
    const err = lines[0]?.obj.err as L2UnavailableError
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toBe('L2 get failed: connection reset')
    expect(err.cause).toBe(cause)
  })

  it('a failed write: one warn line; the write path names its L2 operation setMany, even for one key', async () => {
    const cause = new Error('READONLY')
    const { store } = failingStore(['set', 'setMany'], cause)
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ ...quiet, l2: store, logger, clock: fakeClock(), breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v')
    expect(lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache L2 call failed', obj: { err: expect.any(L2UnavailableError), operation: 'setMany', cache: 'tiercache' } },
    ])
    expect((lines[0]?.obj.err as Error).message).toBe('L2 setMany failed: READONLY')
    expect((lines[0]?.obj.err as Error).cause).toBe(cause)
  })

  it('a call past l2Timeout: the same warn line, with an L2TimeoutError', async () => {
    const inner = memoryStore()
    const answered = deferred<undefined>()
    const store: RemoteStore = { ...inner, get: () => answered.promise }
    onTestFinished(() => answered.resolve(undefined))
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ ...quiet, l2: store, logger, clock: fakeClock(), l2Timeout: 5, breaker: { volumeThreshold: 100 } })
    expect(await cache.get('k')).toBeUndefined()
    expect(lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache L2 call failed', obj: { err: expect.any(L2TimeoutError), operation: 'get', cache: 'tiercache' } },
    ])
    expect((lines[0]?.obj.err as L2TimeoutError).code).toBe('E_L2_TIMEOUT')
    expect((lines[0]?.obj.err as Error).message).toBe('L2 get did not answer within 5ms')
  })
})

describe('circuit breaker log lines', () => {
  it('open, half-open and closed: one warn line per transition, in order, none without one', async () => {
    // Only opossum's reset timer (setTimeout) is faked: half-open comes when the test says so.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const { store, failing } = failingStore(['get', 'getGenerations'], new Error('ECONNREFUSED'))
    const { logger, lines } = recordingLogger()
    const cache = createTieredCache({
      ...quiet,
      l2: store,
      logger,
      name: 'orders',
      clock: fakeClock(),
      breaker: { volumeThreshold: 1, errorThresholdPercentage: 50, resetTimeout: '1s' },
    })
    const breakerLine = (state: string): Line => ({ level: 'warn', msg: `tiercache L2 circuit breaker ${state}`, obj: { state, cache: 'orders' } })
    const failedLine = (operation: string): Line => ({
      level: 'warn',
      msg: 'tiercache L2 call failed',
      obj: { err: expect.any(L2UnavailableError), operation, cache: 'orders' },
    })

    // The first call fails (the generations read) and trips the breaker: the breaker's line
    // comes first, the failed call's after it.
    expect(await cache.get('k')).toBeUndefined()
    expect(lines).toStrictEqual([breakerLine('open'), failedLine('getGenerations')])

    // While open nothing reaches L2, so nothing is logged.
    lines.length = 0
    expect(await cache.get('k')).toBeUndefined()
    vi.advanceTimersByTime(999)
    expect(lines).toStrictEqual([])
    vi.advanceTimersByTime(1)
    expect(lines).toStrictEqual([breakerLine('half-open')])

    // A failing probe opens it again.
    lines.length = 0
    expect(await cache.get('k')).toBeUndefined()
    expect(lines).toStrictEqual([breakerLine('open'), failedLine('getGenerations')])

    // A probe that succeeds closes it; the read after it succeeds too and logs nothing.
    lines.length = 0
    vi.advanceTimersByTime(1_000)
    failing.on = false
    expect(await cache.get('k')).toBeUndefined()
    expect(lines).toStrictEqual([breakerLine('half-open'), breakerLine('closed')])
    expect(cache.stats().breaker).toEqual({ state: 'closed', transitions: 5 })
    await cache.close()
  })
})

describe('invalidation log lines', () => {
  async function pair() {
    const network = memoryBusNetwork()
    const store = memoryStore()
    const nodes = ['a', 'b'].map((id) => {
      const { logger, lines } = recordingLogger()
      const bus = memoryBus({ network, instanceId: id })
      const cache = cacheFor({ l2: store, bus, logger, name: `node-${id}` })
      return { cache, bus, lines }
    })
    while (!nodes.every((n) => n.bus.healthy)) await new Promise((r) => setImmediate(r))
    // Start-up lines are not what these tests are about.
    for (const node of nodes) node.lines.length = 0
    return nodes as [(typeof nodes)[0], (typeof nodes)[0]]
  }

  it('a local delete and the bus message that applies it elsewhere write no log line, at any level', async () => {
    const [a, b] = await pair()
    await a.cache.set('k', 'v1')
    expect(await b.cache.get('k')).toBe('v1')
    const applied = nextEvent<CacheEvents['bus:applied']>((l) => b.cache.on('bus:applied', l), (e) => e.op === 'delete')
    await a.cache.delete('k')
    expect(await applied).toMatchObject({ source: 'a', op: 'delete', keys: ['k'] })
    expect(b.cache.peek('k')).toBeUndefined()
    expect(a.lines).toStrictEqual([])
    expect(b.lines).toStrictEqual([])
  })

  it('the first subscription is start-up, not a recovery: one info line, no flush announced', async () => {
    const { logger, lines } = recordingLogger()
    const bus = memoryBus({ network: memoryBusNetwork(), instanceId: 'first' })
    const cache = cacheFor({ l2: memoryStore(), bus, logger, name: 'node-first' })
    const flushes: unknown[] = []
    cache.on('l1-flushed', (e) => flushes.push(e))
    while (!bus.healthy) await new Promise((r) => setImmediate(r))
    expect(lines).toStrictEqual([{ level: 'info', msg: 'tiercache bus subscribed', obj: { healthy: true, cache: 'node-first' } }])
    expect(flushes).toStrictEqual([])
    expect(cache.stats().l1Flushes).toBe(0)
  })

  it('the bus going unhealthy and healthy again: one warn line each', async () => {
    const [a] = await pair()
    a.bus.setHealthy(false)
    a.bus.setHealthy(true)
    expect(a.lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache bus unhealthy: L1 capped', obj: { healthy: false, cache: 'node-a' } },
      { level: 'warn', msg: 'tiercache bus healthy: L1 flushed', obj: { healthy: true, cache: 'node-a' } },
    ])
  })

  it('a bus message the engine cannot apply: one error line with the context, and an error event', async () => {
    let deliver: ((message: ReceivedInvalidation) => void) | undefined
    const bus: InvalidationBus = {
      instanceId: 'self',
      healthy: true,
      publish: async () => {},
      onMessage: (handler) => void (deliver = handler),
      onHealthChange() {},
      start: async () => {},
      close: async () => {},
    }
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ bus, logger })
    const errors: CacheEvents['error'][] = []
    cache.on('error', (e) => errors.push(e))
    deliver?.({ op: 'delete', keys: null, source: 'other', seq: 1, ts: 0 } as unknown as ReceivedInvalidation)
    expect(lines).toStrictEqual([
      { level: 'error', msg: 'tiercache background bus message failed', obj: { err: expect.any(TypeError), context: 'bus message', cache: 'tiercache' } },
    ])
    expect(errors).toStrictEqual([{ error: lines[0]?.obj.err, context: 'bus message' }])
    expect(cache.stats().busMessagesApplied).toBe(0)
  })

  it('a family invalidate() that cannot bump in L2: the L2 line, then a warn line naming family and generation', async () => {
    const { store } = failingStore(['bumpGeneration'], new Error('NOSCRIPT'))
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ ...quiet, l2: store, logger, clock: fakeClock(), breaker: { volumeThreshold: 100 } })
    const lists = cache.family({ name: 'task:list', generational: true, key: (page: number) => `page=${page}` })
    await lists.invalidate()
    expect(lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache L2 call failed', obj: { err: expect.any(L2UnavailableError), operation: 'bumpGeneration', cache: 'tiercache' } },
      { level: 'warn', msg: 'tiercache generation bump failed; namespace bump queued', obj: { family: 'task:list@1', generation: 'task:list@1' } },
    ])
    expect(cache.stats().recoveryQueueDepth).toBeGreaterThan(0)
  })

  it('a failed L2 delete is queued; its replay writes one info line with the count', async () => {
    const { store, failing } = failingStore(['delete'], new Error('ETIMEDOUT'))
    const { logger, lines } = recordingLogger()
    const cache = cacheFor({ ...quiet, l2: store, logger, clock: fakeClock(), breaker: { volumeThreshold: 100 } })
    await cache.set('k', 'v')
    await cache.delete('k')
    expect(lines).toStrictEqual([
      { level: 'warn', msg: 'tiercache L2 call failed', obj: { err: expect.any(L2UnavailableError), operation: 'delete', cache: 'tiercache' } },
    ])
    lines.length = 0
    failing.on = false
    const replayed = nextEvent<CacheEvents['recovery-replayed']>((l) => cache.on('recovery-replayed', l))
    expect(await cache.get('other')).toBeUndefined()
    expect(await replayed).toEqual({ keys: 1, generationBumped: false })
    expect(lines).toStrictEqual([{ level: 'info', msg: 'tiercache recovery queue replayed', obj: { keys: 1, generationBumped: false } }])
  })
})
