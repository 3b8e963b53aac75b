import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy in front of a server (Redis), for partition and chaos tests. Every fault applies to
 * the connections already open as well as to new ones, and any mix of them can be on at once:
 * - `cut()` destroys every connection (the client sees a disconnect at once);
 * - `blackhole()` stops forwarding without closing anything (bytes are held, not lost);
 * - `delay(ms)` adds latency to every chunk, both ways;
 * - `bandwidth(bytesPerSecond)` limits throughput per direction, shared by all connections;
 * - `halfOpen()` turns every open connection silent for good (what a peer that vanished without a
 *   FIN looks like: writes go nowhere, nothing comes back, nothing closes) and accepts new ones
 *   that are never answered;
 * - `refuse()` closes new connections at once.
 *
 * Bytes keep their order on each connection whatever the faults do (a chunk delayed before
 * `delay(0)` still leaves before the chunks after it). It also counts round trips: on each
 * connection, every time the client speaks after the server did (or first).
 */
export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Connections currently proxied (silent half-open ones included). */
  readonly connections: number
  /**
   * Round trips so far, over all connections: a client's bytes that follow the server's (or come
   * first) start one; pipelined commands sent before the reply count once.
   */
  readonly roundTrips: number
  /** Bytes forwarded so far: client to server (`up`) and server to client (`down`). */
  readonly bytes: { readonly up: number; readonly down: number }
  /** Bytes received and not yet forwarded (delayed, held or waiting for bandwidth). */
  readonly waiting: number
  /** Destroys every open connection (both sides). New connections are still accepted. */
  cut(): void
  /** Stops forwarding in both directions without closing anything; bytes are held, not lost. */
  blackhole(): void
  /** Delays every chunk by `ms` in both directions, on open connections too (0 removes the delay). */
  delay(ms: number): void
  /**
   * Limits each direction to `bytesPerSecond`, shared by every connection (`undefined` lifts it).
   * Chunks are split into slices of at most 10 ms of the rate, so that a large reply trickles.
   */
  bandwidth(bytesPerSecond: number | undefined): void
  /**
   * Every open connection goes silent: bytes are dropped both ways and nothing is closed; it stays
   * so after `heal()` (only the client can give it up). New connections are accepted and never
   * answered until `heal()`.
   */
  halfOpen(): void
  /** Refuses (immediately closes) new connections until `heal()`. */
  refuse(): void
  /** Undoes `blackhole()`, `delay()`, `bandwidth()`, `refuse()` and `halfOpen()` for new connections; held bytes are forwarded. */
  heal(): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartFaultProxyOptions {
  readonly target: { readonly host?: string; readonly port: number }
  /** Port to listen on; a free one when omitted. */
  readonly port?: number
}

type Direction = 'up' | 'down'

/** One direction of one connection: the chunks waiting to leave, in order. */
interface Lane {
  readonly direction: Direction
  readonly to: Socket
  readonly queue: { chunk: Buffer; due: number }[]
  timer: NodeJS.Timeout | undefined
  timerAt: number
}

interface Pair {
  readonly client: Socket
  /** Absent for a connection accepted while half-open: it never reaches the server. */
  readonly upstream: Socket | undefined
  readonly lanes: readonly Lane[]
  /** Half-open: everything is dropped, for good. */
  silent: boolean
}

/** The longest slice of a rate-limited chunk, in ms of the rate. */
const SLICE_MS = 10

export async function startFaultProxy(options: StartFaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.target.host ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  let holding = false
  let delayMs = 0
  let refusing = false
  let halfOpening = false
  /** Bytes per ms, per direction; the time each direction's link is free again. */
  let rate: number | undefined
  const linkFreeAt: Record<Direction, number> = { up: 0, down: 0 }
  const forwarded: Record<Direction, number> = { up: 0, down: 0 }
  let roundTrips = 0

  const schedule = (lane: Lane, at: number) => {
    if (lane.timer !== undefined && lane.timerAt <= at) return
    clearTimeout(lane.timer)
    lane.timerAt = at
    lane.timer = setTimeout(() => {
      lane.timer = undefined
      pump(lane)
    }, Math.max(0, at - performance.now()))
    lane.timer.unref()
  }

  /** Sends what may leave now, in order; sets a timer for the rest. */
  const pump = (lane: Lane): void => {
    if (holding) return
    while (lane.queue.length > 0) {
      if (lane.to.destroyed) {
        lane.queue.length = 0
        return
      }
      const head = lane.queue[0] as { chunk: Buffer; due: number }
      const now = performance.now()
      if (head.due > now) return schedule(lane, head.due)
      let piece = head.chunk
      if (rate !== undefined) {
        const free = linkFreeAt[lane.direction]
        if (free > now) return schedule(lane, free)
        const slice = Math.max(1, Math.floor(rate * SLICE_MS))
        if (piece.length > slice) {
          head.chunk = piece.subarray(slice)
          piece = piece.subarray(0, slice)
        } else lane.queue.shift()
        // From when the link fell free (a late timer does not lower the rate), catching up at most one slice.
        linkFreeAt[lane.direction] = Math.max(free, now - SLICE_MS) + piece.length / rate
      } else lane.queue.shift()
      forwarded[lane.direction] += piece.length
      lane.to.write(piece)
    }
  }

  const lane = (direction: Direction, to: Socket): Lane => ({ direction, to, queue: [], timer: undefined, timerAt: 0 })

  const drop = (pair: Pair) => {
    pairs.delete(pair)
    for (const l of pair.lanes) clearTimeout(l.timer)
    pair.client.destroy()
    pair.upstream?.destroy()
  }

  /** Half-open: the connection stays, nothing moves, the server side is let go. */
  const silence = (pair: Pair) => {
    pair.silent = true
    for (const l of pair.lanes) {
      clearTimeout(l.timer)
      l.queue.length = 0
    }
    pair.upstream?.destroy()
  }

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    if (halfOpening) {
      const pair: Pair = { client, upstream: undefined, lanes: [], silent: true }
      pairs.add(pair)
      client.on('data', () => {})
      client.on('error', () => drop(pair))
      client.on('close', () => drop(pair))
      return
    }
    const upstream = connect({ host: targetHost, port: options.target.port })
    upstream.setNoDelay(true)
    const up = lane('up', upstream)
    const down = lane('down', client)
    const pair: Pair = { client, upstream, lanes: [up, down], silent: false }
    pairs.add(pair)
    const close = () => {
      // A silent connection outlives its server side: only the client closes it.
      if (pair.silent && !client.destroyed) return
      drop(pair)
    }
    client.on('error', () => drop(pair))
    client.on('close', () => drop(pair))
    upstream.on('error', close)
    upstream.on('close', close)
    let clientSpoke = false
    client.on('data', (chunk: Buffer) => {
      if (pair.silent) return
      if (!clientSpoke) roundTrips++
      clientSpoke = true
      up.queue.push({ chunk, due: performance.now() + delayMs })
      pump(up)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (pair.silent) return
      clientSpoke = false
      down.queue.push({ chunk, due: performance.now() + delayMs })
      pump(down)
    })
  })
  server.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const cut = () => {
    for (const pair of [...pairs]) drop(pair)
  }
  const stop = async () => {
    cut()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  const pumpAll = () => {
    for (const pair of pairs) for (const l of pair.lanes) pump(l)
  }
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get connections() {
      return pairs.size
    },
    get roundTrips() {
      return roundTrips
    },
    get bytes() {
      return { up: forwarded.up, down: forwarded.down }
    },
    get waiting() {
      let n = 0
      for (const pair of pairs) for (const l of pair.lanes) for (const item of l.queue) n += item.chunk.length
      return n
    },
    cut,
    blackhole() {
      holding = true
    },
    delay(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay: expected a duration in ms, 0 or more (got ${ms})`)
      delayMs = ms
    },
    bandwidth(bytesPerSecond: number | undefined) {
      if (bytesPerSecond !== undefined && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
        throw new RangeError(`bandwidth: expected bytes per second above 0, or undefined (got ${bytesPerSecond})`)
      }
      rate = bytesPerSecond === undefined ? undefined : bytesPerSecond / 1000
      pumpAll()
    },
    halfOpen() {
      halfOpening = true
      for (const pair of pairs) silence(pair)
    },
    refuse() {
      refusing = true
    },
    heal() {
      holding = false
      delayMs = 0
      rate = undefined
      refusing = false
      halfOpening = false
      pumpAll()
    },
    stop,
    [Symbol.asyncDispose]: stop,
  }
}
