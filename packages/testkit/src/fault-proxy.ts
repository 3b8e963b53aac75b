import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy in front of a server (Redis), for partition tests: it can cut every connection
 * (the client sees a disconnect), black-hole them (sockets stay open, nothing flows: what a
 * partition looks like), delay traffic, or refuse new connections. It also counts round trips:
 * on each connection, every time the client speaks after the server did (or first).
 */
export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Connections currently proxied. */
  readonly connections: number
  /**
   * Round trips so far, over all connections: a client's bytes that follow the server's (or come
   * first) start one; pipelined commands sent before the reply count once.
   */
  readonly roundTrips: number
  /** Destroys every open connection (both sides). New connections are still accepted. */
  cut(): void
  /** Stops forwarding in both directions without closing anything; bytes are held, not lost. */
  blackhole(): void
  /** Delays every chunk by `ms` in both directions (0 removes the delay). */
  delay(ms: number): void
  /** Refuses (immediately closes) new connections until `heal()`. */
  refuse(): void
  /** Undoes `blackhole()`, `delay()` and `refuse()`; held bytes are forwarded. */
  heal(): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartFaultProxyOptions {
  readonly target: { readonly host?: string; readonly port: number }
  /** Port to listen on; a free one when omitted. */
  readonly port?: number
}

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
}

export async function startFaultProxy(options: StartFaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.target.host ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  let holding = false
  let delayMs = 0
  let refusing = false
  const held: (() => void)[] = []
  let roundTrips = 0

  const forward = (from: Socket, to: Socket, onData: () => void) => {
    from.on('data', (chunk: Buffer) => {
      onData()
      const send = () => {
        if (!to.destroyed) to.write(chunk)
      }
      if (holding) held.push(send)
      else if (delayMs > 0) setTimeout(send, delayMs).unref()
      else send()
    })
  }

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    const upstream = connect({ host: targetHost, port: options.target.port })
    upstream.setNoDelay(true)
    const pair = { client, upstream }
    pairs.add(pair)
    const close = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
    upstream.on('close', close)
    let clientSpoke = false
    forward(client, upstream, () => {
      if (!clientSpoke) roundTrips++
      clientSpoke = true
    })
    forward(upstream, client, () => {
      clientSpoke = false
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
    for (const pair of [...pairs]) {
      pairs.delete(pair)
      pair.client.destroy()
      pair.upstream.destroy()
    }
  }
  const stop = async () => {
    cut()
    held.length = 0
    await new Promise<void>((resolve) => server.close(() => resolve()))
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
    cut,
    blackhole() {
      holding = true
    },
    delay(ms: number) {
      delayMs = ms
    },
    refuse() {
      refusing = true
    },
    heal() {
      holding = false
      delayMs = 0
      refusing = false
      for (const send of held.splice(0)) send()
    },
    stop,
    [Symbol.asyncDispose]: stop,
  }
}
