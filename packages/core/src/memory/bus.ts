import { CacheClosedError } from '../errors.js'
import type { Invalidation, InvalidationBus, ReceivedInvalidation } from '../ports.js'

/** The medium memory buses talk over, with knobs for tests. */
export interface MemoryBusNetwork {
  /** Queue messages instead of delivering them (a slow or paused transport). */
  hold(): void
  /** Deliver the held messages, in order, and stop holding. */
  release(): void
  /** Drop every message published from now on (until `drop(false)`). */
  drop(dropping?: boolean): void
  /** Messages currently held. */
  readonly pending: number
  /** Messages delivered so far (to any receiver). */
  readonly delivered: number
}

interface Member {
  readonly instanceId: string
  deliver(message: ReceivedInvalidation): void
}

interface NetworkInternals extends MemoryBusNetwork {
  join(member: Member): void
  leave(member: Member): void
  send(message: ReceivedInvalidation): void
}

export function memoryBusNetwork(): MemoryBusNetwork {
  const members = new Set<Member>()
  let held: ReceivedInvalidation[] | undefined
  let dropping = false
  let delivered = 0
  const fanOut = (message: ReceivedInvalidation) => {
    for (const member of members) {
      if (member.instanceId === message.source) continue
      delivered++
      member.deliver(message)
    }
  }
  const network: NetworkInternals = {
    hold() {
      held ??= []
    },
    release() {
      const queued = held ?? []
      held = undefined
      for (const message of queued) fanOut(message)
    },
    drop(value = true) {
      dropping = value
    },
    get pending() {
      return held?.length ?? 0
    },
    get delivered() {
      return delivered
    },
    join: (member) => void members.add(member),
    leave: (member) => void members.delete(member),
    send(message) {
      if (dropping) return
      if (held !== undefined) held.push(message)
      // A microtask, like a socket: publish() returns before receivers run.
      else queueMicrotask(() => fanOut(message))
    },
  }
  return network
}

export interface MemoryBusOptions {
  /** Buses on the same network see each other's messages. @default a private network */
  network?: MemoryBusNetwork
  /** @default a random id */
  instanceId?: string
}

export interface MemoryBus extends InvalidationBus {
  /**
   * Simulates the transport's health. While unhealthy the bus receives nothing (like a dropped
   * subscriber connection); listeners hear every change.
   */
  setHealthy(healthy: boolean): void
  /** Messages published so far. */
  readonly published: readonly ReceivedInvalidation[]
}

let instances = 0

/** An in-process `InvalidationBus`. Healthy from `start()` until `setHealthy(false)`. */
export function memoryBus(options: MemoryBusOptions = {}): MemoryBus {
  const network = (options.network ?? memoryBusNetwork()) as NetworkInternals
  const instanceId = options.instanceId ?? `memory-${process.pid}-${++instances}-${Math.random().toString(36).slice(2, 8)}`
  let handler: ((message: ReceivedInvalidation) => void) | undefined
  const healthListeners: ((healthy: boolean) => void)[] = []
  const published: ReceivedInvalidation[] = []
  let healthy = false
  let seq = 0
  let closed = false

  const setHealth = (value: boolean) => {
    if (value === healthy) return
    healthy = value
    for (const listener of healthListeners) listener(value)
  }
  const member: Member = {
    instanceId,
    deliver(message) {
      if (healthy && message.source !== instanceId) handler?.(message)
    },
  }

  return {
    instanceId,
    get healthy() {
      return healthy
    },
    published,
    async publish(message: Invalidation) {
      if (closed) throw new CacheClosedError('the memory bus')
      const stamped = { ...message, source: instanceId, seq: ++seq, ts: Date.now() } as ReceivedInvalidation
      published.push(stamped)
      network.send(stamped)
    },
    onMessage(fn) {
      handler = fn
    },
    onHealthChange(listener) {
      healthListeners.push(listener)
    },
    async start() {
      if (closed) throw new CacheClosedError('the memory bus')
      network.join(member)
      setHealth(true)
    },
    ready(timeoutMs: number) {
      if (healthy) return Promise.resolve(true)
      return new Promise<boolean>((resolve) => {
        let settled = false
        const timer = setTimeout(() => {
          settled = true
          resolve(healthy)
        }, timeoutMs)
        timer.unref?.()
        healthListeners.push((value) => {
          if (settled || !value) return
          settled = true
          clearTimeout(timer)
          resolve(true)
        })
      })
    },
    async close() {
      closed = true
      network.leave(member)
      setHealth(false)
    },
    setHealthy: setHealth,
  }
}
