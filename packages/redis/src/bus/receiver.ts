/**
 * The message handler, the hot path of the bus: it runs for every write of every node. Decode
 * (msgpack), validate by hand, drop own messages, hand each op to the engine. A malformed message
 * is counted and dropped; nothing thrown by the engine's handler escapes into ioredis.
 */
import type { Logger, ReceivedInvalidation } from '@tiercache/core'
import { decodeBusMessage } from '../bus-message.js'
import type { BusCounters } from './counters.js'
import type { Health } from './health.js'
import type { TrackingSource } from './tracking.js'

const NOOP_HANDLER = (_message: ReceivedInvalidation): void => {}

export class Receiver {
  readonly #instanceId: string
  readonly #channel: Buffer
  readonly #heartbeatChannel: Buffer
  readonly #counters: BusCounters
  readonly #logger: Logger
  readonly #health: Health
  readonly #tracking: TrackingSource | undefined
  #handler: (message: ReceivedInvalidation) => void = NOOP_HANDLER

  constructor(instanceId: string, channel: string, heartbeatChannel: string, counters: BusCounters, logger: Logger, health: Health, tracking: TrackingSource | undefined) {
    this.#instanceId = instanceId
    this.#channel = Buffer.from(channel)
    this.#heartbeatChannel = Buffer.from(heartbeatChannel)
    this.#counters = counters
    this.#logger = logger
    this.#health = health
    this.#tracking = tracking
  }

  setHandler(handler: (message: ReceivedInvalidation) => void): void {
    this.#handler = handler
  }

  /** The subscriber connection's message listener: the bus channel, this node's heartbeats, or tracking's. */
  readonly onMessage = (channel: Buffer, payload: unknown): void => {
    this.#counters.delivered++
    try {
      if (channel.length === this.#channel.length && channel.equals(this.#channel)) {
        this.#onBusMessage(payload as Buffer)
      } else if (channel.equals(this.#heartbeatChannel)) {
        // Only this node subscribes to it, and only it publishes there: that it arrived is the
        // news (the subscription is live end to end), so there is nothing to decode.
        this.#health.seen()
      } else if (this.#tracking !== undefined) {
        this.#onTracked(this.#tracking, payload)
      }
    } catch (error) {
      // The handler must never throw into ioredis' parser.
      this.#logger.error({ err: error }, 'tiercache bus: invalidation handler threw')
    }
  }

  #onBusMessage(payload: Buffer): void {
    const decoded = decodeBusMessage(payload)
    if (!decoded.ok) {
      this.#counters.malformed++
      this.#logger.debug({ reason: decoded.reason, bytes: payload.length }, 'tiercache bus: malformed message dropped')
      return
    }
    this.#health.seen()
    const { source, seq, ts, ops } = decoded.message
    if (source === this.#instanceId) {
      if (ops.length > 0) this.#counters.ownIgnored++
      return
    }
    if (ops.length === 0) return
    this.#counters.received++
    const handler = this.#handler
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      const received: ReceivedInvalidation =
        op.op === 'delete'
          ? { op: 'delete', keys: op.keys, source, seq: seq + i, ts }
          : op.op === 'expire'
            ? { op: 'expire', keys: op.keys, source, seq: seq + i, ts }
            : op.op === 'generation'
              ? { op: 'generation', name: op.name, value: op.value, source, seq: seq + i, ts }
              : op.op === 'tags'
                ? { op: 'tags', tags: op.tags, version: op.version, source, seq: seq + i, ts }
                : { op: 'clear', source, seq: seq + i, ts }
      handler(received)
    }
  }

  #onTracked(tracking: TrackingSource, payload: unknown): void {
    // Proof that the subscriber is alive only when it arrived on the subscriber (one server); a
    // cluster's trackers are connections of their own.
    if (tracking.onSubscriber) this.#health.seen()
    const message = tracking.invalidation(payload)
    if (message !== undefined) this.#handler(message)
  }
}
