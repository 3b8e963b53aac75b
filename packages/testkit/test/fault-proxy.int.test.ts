// The fault proxy in front of a real redis-server: every fault acts on connections already open.
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startFaultProxy, startRedis, type FaultProxy, type RedisServer } from '@tiercache/testkit'

/** A raw RESP connection through the proxy: every chunk it receives is kept. */
interface Client {
  readonly socket: Socket
  readonly chunks: Buffer[]
  readonly closed: () => boolean
  send(...args: string[]): void
  /** Resolves once `bytes` bytes have arrived in total. */
  received(bytes: number): Promise<void>
  text(): string
}

function resp(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`
}

async function client(proxy: FaultProxy): Promise<Client> {
  const socket = connect({ host: proxy.host, port: proxy.port })
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const chunks: Buffer[] = []
  let closed = false
  const waiters: (() => void)[] = []
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    for (const wake of waiters.splice(0)) wake()
  })
  socket.on('error', () => {})
  socket.on('close', () => (closed = true))
  onTestFinished(() => void socket.destroy())
  const total = () => chunks.reduce((n, c) => n + c.length, 0)
  return {
    socket,
    chunks,
    closed: () => closed,
    send: (...args) => void socket.write(resp(args)),
    async received(bytes) {
      while (total() < bytes) await new Promise<void>((resolve) => waiters.push(resolve))
    },
    text: () => Buffer.concat(chunks).toString(),
  }
}

describe('startFaultProxy', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(() => redis.stop())

  async function proxied(): Promise<FaultProxy> {
    const proxy = await startFaultProxy({ target: { host: redis.host, port: redis.port } })
    onTestFinished(() => proxy.stop())
    return proxy
  }

  it('forwards both ways and counts bytes and round trips', async () => {
    const proxy = await proxied()
    const c = await client(proxy)
    c.send('PING')
    await c.received(7)
    expect(c.text()).toBe('+PONG\r\n')
    expect(proxy.bytes).toEqual({ up: resp(['PING']).length, down: 7 })
    expect(proxy.roundTrips).toBe(1)
    expect(proxy.connections).toBe(1)
  })

  it('delay() slows a connection that was already open, and keeps the order when lifted mid-flight', async () => {
    const proxy = await proxied()
    const c = await client(proxy)
    c.send('PING')
    await c.received(7)
    proxy.delay(150)
    const t0 = performance.now()
    c.send('ECHO', 'first')
    // Lifted while 'first' is still held in the proxy: 'second' leaves at once but not before it.
    await expect.poll(() => proxy.waiting, { interval: 1 }).toBeGreaterThan(0)
    proxy.delay(0)
    c.send('ECHO', 'second')
    await c.received(7 + 11 + 12)
    // A lower bound only: a slow machine makes it longer, never shorter.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140)
    expect(c.text()).toBe('+PONG\r\n$5\r\nfirst\r\n$6\r\nsecond\r\n')
  })

  it('bandwidth() makes a large reply on an open connection trickle in slices, then lifts', async () => {
    const proxy = await proxied()
    const value = 'x'.repeat(40_000)
    await redis.command('SET', 'big', value)
    const c = await client(proxy)
    c.send('PING')
    await c.received(7)
    // 100 kB/s: slices of 1,000 bytes (10 ms of the rate), 40 of them.
    proxy.bandwidth(100_000)
    const t0 = performance.now()
    c.send('GET', 'big')
    const reply = `$40000\r\n${value}\r\n`.length
    await c.received(7 + reply)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350)
    // It trickled: many pieces (the client may read two slices at once, never the whole at once).
    expect(c.chunks.length - 1).toBeGreaterThanOrEqual(10)
    proxy.bandwidth(undefined)
    const before = c.chunks.length
    c.send('GET', 'big')
    await c.received(7 + 2 * reply)
    expect(c.chunks.length - before).toBeLessThan(40)
  })

  it('halfOpen(): open connections go silent for good without closing, new ones are accepted and never answered', async () => {
    const proxy = await proxied()
    const open = await client(proxy)
    open.send('PING')
    await open.received(7)
    proxy.halfOpen()
    open.send('PING')
    const accepted = await client(proxy)
    accepted.send('PING')
    // Accepted by the proxy while half-open (the client's connect can come first).
    await expect.poll(() => proxy.connections).toBe(2)
    proxy.heal()
    // A connection made after heal() works; its whole round trip came after the silent ones spoke.
    const after = await client(proxy)
    after.send('PING')
    await after.received(7)
    after.send('ECHO', 'again')
    await after.received(7 + 11)
    expect(open.text()).toBe('+PONG\r\n')
    expect(accepted.chunks).toEqual([])
    expect(open.closed()).toBe(false)
    expect(accepted.closed()).toBe(false)
    expect(proxy.connections).toBe(3)
    // Only the client gives a silent connection up.
    open.socket.destroy()
    await expect.poll(() => proxy.connections).toBe(2)
  })

  it('blackhole() holds bytes on open connections and heal() delivers them in order', async () => {
    const proxy = await proxied()
    const c = await client(proxy)
    proxy.blackhole()
    c.send('ECHO', 'a')
    c.send('ECHO', 'b')
    await expect.poll(() => proxy.waiting).toBe(2 * resp(['ECHO', 'a']).length)
    const control = await client(proxy)
    control.send('PING')
    // The control connection is held too: nothing moves until heal().
    proxy.heal()
    await c.received(14)
    await control.received(7)
    expect(c.text()).toBe('$1\r\na\r\n$1\r\nb\r\n')
  })

  it('cut() closes every open connection and keeps accepting new ones', async () => {
    const proxy = await proxied()
    const c = await client(proxy)
    proxy.cut()
    await expect.poll(() => c.closed()).toBe(true)
    const next = await client(proxy)
    next.send('PING')
    await next.received(7)
    expect(next.text()).toBe('+PONG\r\n')
  })

  it('refuses bad fault settings, naming the setting', async () => {
    const proxy = await proxied()
    expect(() => proxy.delay(-1)).toThrow(/delay: expected a duration in ms/)
    expect(() => proxy.delay(Number.NaN)).toThrow(RangeError)
    expect(() => proxy.bandwidth(0)).toThrow(/bandwidth: expected bytes per second above 0/)
    expect(() => proxy.bandwidth(Number.POSITIVE_INFINITY)).toThrow(RangeError)
  })
})
