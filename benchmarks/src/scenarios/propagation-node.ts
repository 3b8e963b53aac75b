// One process of the propagation, stampede and scale scenarios, driven over the testkit's JSON-lines
// RPC: a tiercache node (createRedisCache: store + bus on one data connection), plus a bare
// ioredis publisher/subscriber pair for the baseline. Times are wall-clock ms with sub-ms
// resolution (performance.timeOrigin + now), comparable between processes of one machine.
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { createRedisCache, type RedisCache } from '@tiercache/redis'
import { serveNodeProcess } from '@tiercache/testkit'

const now = () => performance.timeOrigin + performance.now()

let cache: RedisCache | undefined
let publisher: Redis | undefined
let subscriber: Redis | undefined
/** The bare baseline of a write: SET + PUBLISH pipelined by the writer, GET by the subscriber's side. */
let rawWriter: Redis | undefined
let rawListener: Redis | undefined
let rawReader: Redis | undefined
/** The message id a watching baseline subscriber reads on. */
let rawExpected: number | undefined
let loaderCalls = 0
/** bentocache (memory L1 + redis L2, and its redis bus) for the comparisons, loaded only when asked for. */
interface Bento {
  getOrSet(options: { key: string; factory: () => Promise<unknown>; ttl: string }): Promise<unknown>
  get(options: { key: string }): Promise<unknown>
  set(options: { key: string; value: unknown; ttl: string }): Promise<unknown>
  on(event: 'bus:message:received', listener: (data: { message: { keys: string[] } }) => void): unknown
  disconnectAll(): Promise<void>
}
let bento: Bento | undefined
/** What this node waits to read, and since when it has been told. */
let expected: { key: string; value: unknown } | undefined

const need = () => {
  if (!cache) throw new Error('init first')
  return cache
}

const server = serveNodeProcess({
  async init({ url, namespace, leaseWait }: { url: string; namespace: string; leaseWait?: string }) {
    cache = createRedisCache({
      redis: url,
      namespace,
      ttl: '10m',
      jitter: 0,
      l2Timeout: '1s',
      lease: { waitTimeout: leaseWait ?? '5s', pollInterval: '5ms' },
    })
    await cache.bus!.start()
    // As soon as the invalidation of the watched key is applied, read it again: the time the
    // new value is returned is the propagation end.
    cache.on('bus:applied', (event) => {
      const watch = expected
      if (watch === undefined || !event.keys.includes(watch.key)) return
      const appliedAt = now()
      void need()
        .get(watch.key)
        .then((value) => {
          if (expected === watch && JSON.stringify(value) === JSON.stringify(watch.value)) {
            expected = undefined
            server.emit('observed', { at: now(), appliedAt })
          }
        })
    })
    return { instanceId: cache.bus!.instanceId }
  },
  /** The bus's counters (scale: messages the subscriber connection delivered). */
  busStats: () => need().bus!.stats(),
  get: async ({ key }: { key: string }) => (await need().get(key)) ?? null,
  expect({ key, value }: { key: string; value: unknown }) {
    expected = { key, value }
  },
  async write({ key, value }: { key: string; value: unknown }) {
    const start = now()
    await need().set(key, value)
    return { start, ack: now() }
  },
  async getOrSet({ key, count, delayMs }: { key: string; count: number; delayMs: number }) {
    const loader = async () => {
      loaderCalls++
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      return { loaded: key }
    }
    const values = await Promise.all(Array.from({ length: count }, () => need().getOrSet(key, loader)))
    return values.every((v) => JSON.stringify(v) === JSON.stringify({ loaded: key }))
  },
  loaderCalls: () => loaderCalls,
  async bentoInit({ host, port, prefix, bus }: { host: string; port: number; prefix: string; bus?: boolean }) {
    const { BentoCache, bentostore } = await import('bentocache')
    const { memoryDriver } = await import('bentocache/drivers/memory')
    const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis')
    const store = bentostore().useL1Layer(memoryDriver({ maxItems: 1_000 })).useL2Layer(redisDriver({ connection: { host, port } }))
    if (bus) store.useBus(redisBusDriver({ connection: { host, port } }))
    bento = new BentoCache({ default: 'tiered', prefix, stores: { tiered: store } }) as unknown as Bento
    if (!bus) return
    // bentocache announces a message before it applies it (synchronously): read after that.
    bento.on('bus:message:received', ({ message }) => {
      const watch = expected
      if (watch === undefined || !message.keys.some((k) => k.endsWith(watch.key))) return
      const appliedAt = now()
      queueMicrotask(() => {
        void bento!.get({ key: watch.key }).then((value) => {
          if (expected === watch && JSON.stringify(value) === JSON.stringify(watch.value)) {
            expected = undefined
            server.emit('observed', { at: now(), appliedAt })
          }
        })
      })
    })
    // Let the bus subscribe before the first trial.
    await bento.get({ key: '__warm__' })
  },
  bentoGet: async ({ key }: { key: string }) => (await bento!.get({ key })) ?? null,
  async bentoWrite({ key, value }: { key: string; value: unknown }) {
    const start = now()
    await bento!.set({ key, value, ttl: '10m' })
    return { start, ack: now() }
  },
  async bentoGetOrSet({ key, count, delayMs }: { key: string; count: number; delayMs: number }) {
    const factory = async () => {
      loaderCalls++
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      return { loaded: key }
    }
    const values = await Promise.all(Array.from({ length: count }, () => bento!.getOrSet({ key, factory, ttl: '10m' })))
    return values.every((v) => JSON.stringify(v) === JSON.stringify({ loaded: key }))
  },
  async rawInit({ url, channel }: { url: string; channel: string }) {
    publisher = new Redis(url)
    subscriber = new Redis(url)
    await subscriber.subscribe(channel)
    subscriber.on('message', (_channel: string, message: string) => server.emit('raw', { id: Number(message), at: now() }))
  },
  async rawPublish({ channel, id }: { channel: string; id: number }) {
    const start = now()
    await publisher!.publish(channel, String(id))
    return { start, ack: now() }
  },
  /**
   * `watch`: read only on the message `rawSetExpect` names (scale: one observer per write, the
   * other subscribers only receive it, as tiercache's nodes only drop a copy); else on every message.
   */
  async rawSetInit({ url, channel, key, watch = false }: { url: string; channel: string; key: string; watch?: boolean }) {
    rawWriter = new Redis(url)
    rawReader = new Redis(url)
    rawListener = new Redis(url)
    await rawListener.subscribe(channel)
    rawListener.on('message', (_channel: string, message: string) => {
      const id = Number(message)
      if (watch && id !== rawExpected) return
      rawExpected = undefined
      void rawReader!.get(key).then((value) => server.emit('rawSet', { id, value, at: now() }))
    })
  },
  rawSetExpect({ id }: { id: number }) {
    rawExpected = id
  },
  async rawSetWrite({ channel, key, id }: { channel: string; key: string; id: number }) {
    const start = now()
    // One round trip: the value, then the message (the subscriber's GET sees the value).
    await rawWriter!.pipeline().set(key, JSON.stringify({ n: id })).publish(channel, String(id)).exec()
    return { start, ack: now() }
  },
  async close() {
    rawWriter?.disconnect()
    rawReader?.disconnect()
    rawListener?.disconnect()
    await bento?.disconnectAll()
    subscriber?.disconnect()
    publisher?.disconnect()
    await cache?.close()
  },
})
