/**
 * Publishing on the data connection: one message per `publish()`, or one per `prepare()` that a
 * store publishes after its changes (the engine's publisher already
 * coalesces the invalidations of one event-loop turn, so a second batcher here would only delay
 * them), numbered by op, plus the heartbeats, on this node's own heartbeat channel.
 */
import type { Cluster, Redis } from 'ioredis'
import type { Invalidation, Logger, PreparedMessage } from '@tiercache/core'
import { encodeBusMessage, encodeBusTemplate, encodeHeartbeat } from '../bus-message.js'
import { connectReady, firstConnection, isCluster } from '../connection.js'
import { L2UnavailableError, SerializationError } from '../errors.js'
import type { BusCounters } from './counters.js'

/** Heartbeats not yet answered by Redis; more would only pile up behind a paused server. */
const MAX_HEARTBEATS_IN_FLIGHT = 4

const DONE = (): void => {}

export class BusPublisher {
  readonly #data: Redis | Cluster
  readonly #cluster: boolean
  readonly #channel: string
  readonly #heartbeatChannel: string
  readonly #source: string
  readonly #counters: BusCounters
  readonly #logger: Logger
  #nextSeq = 1
  #heartbeatsInFlight = 0
  /** The data connection's first connection, while it is being made. */
  #opening: Promise<boolean> | undefined
  /** Publishes waiting for that first connection. */
  #held = 0

  constructor(data: Redis | Cluster, channel: string, heartbeatChannel: string, source: string, counters: BusCounters, logger: Logger) {
    this.#data = data
    this.#cluster = isCluster(data)
    this.#channel = channel
    this.#heartbeatChannel = heartbeatChannel
    this.#source = source
    this.#counters = counters
    this.#logger = logger
    this.#opening = firstConnection(data)
    void this.#opening?.then(() => (this.#opening = undefined))
  }

  /** Sequence number of the last op published (0 before any). */
  get lastSeq(): number {
    return this.#nextSeq - 1
  }

  /** Sends `message` as a message of its own; resolves once Redis accepted the PUBLISH. */
  publish(message: Invalidation): Promise<void> {
    this.#counters.published++
    const seq = this.#nextSeq++
    let payload: Buffer
    try {
      payload = encodeBusMessage(this.#source, seq, Date.now(), [message])
    } catch (error) {
      this.#counters.publishErrors++
      return Promise.reject(
        new SerializationError(`redis bus: could not encode a '${message.op}' message for "${this.#channel}": keys and generation names must be strings`, {
          cause: error,
        }),
      )
    }
    this.#counters.messagesSent++
    const opening = this.#opening
    if (opening === undefined) return this.#send(payload).then(DONE, this.#failed)
    // Connecting is not failing: a message handed over while the data connection is still being
    // made for the first time goes out once it is (that attempt always ends: connectTimeout).
    this.#held++
    return opening
      .then(() => {
        this.#held--
        return this.#send(payload)
      })
      .then(DONE, this.#failed)
  }

  /**
   * Stamps and encodes `messages` as one message for a store to publish in its round trip (the
   * generation values left open). Numbered and counted as sent here: the store sends it, or the
   * engine holds what it announced and publishes that again.
   */
  prepare(messages: readonly Invalidation[]): PreparedMessage {
    let parts: Buffer[]
    const seq = this.#nextSeq
    try {
      parts = encodeBusTemplate(this.#source, seq, Date.now(), messages)
    } catch (error) {
      this.#counters.publishErrors++
      throw new SerializationError(`redis bus: could not encode a message for "${this.#channel}": keys and generation names must be strings`, { cause: error })
    }
    this.#nextSeq += messages.length
    this.#counters.published += messages.length
    this.#counters.messagesSent++
    return { channel: this.#channel, sharded: this.#cluster, parts }
  }

  readonly #failed = (error: unknown): never => {
    this.#counters.publishErrors++
    const reason = error instanceof Error ? error.message : String(error)
    throw new L2UnavailableError(`redis bus: PUBLISH on "${this.#channel}" failed (${reason}): check that Redis is reachable`, { cause: error })
  }

  heartbeat(): void {
    if (this.#heartbeatsInFlight >= MAX_HEARTBEATS_IN_FLIGHT) return
    this.#heartbeatsInFlight++
    let payload: Buffer
    try {
      payload = encodeHeartbeat(this.#source, this.#nextSeq, Date.now())
    } catch {
      this.#heartbeatsInFlight--
      return
    }
    const opening = this.#opening
    const send = (): Promise<unknown> => this.#send(payload, this.#heartbeatChannel)
    const sent = opening === undefined ? send() : opening.then(send)
    sent.then(
      () => {
        this.#heartbeatsInFlight--
      },
      (error: unknown) => {
        this.#heartbeatsInFlight--
        this.#logger.debug({ err: error }, 'tiercache bus: heartbeat publish failed')
      },
    )
  }

  #send(payload: Buffer, channel = this.#channel): Promise<unknown> {
    return this.#cluster ? this.#data.spublish(channel, payload) : this.#data.publish(channel, payload)
  }

  /**
   * True once the data connection is ready (a lazy one is connected), false if not within
   * `timeoutMs`. It has no offline queue: a bus that reports started must be able to publish.
   */
  ready(timeoutMs: number): Promise<boolean> {
    return connectReady(this.#data, timeoutMs)
  }

  /** Resolves once the publishes held for the first connection were handed to it (or failed). */
  settle(): Promise<void> {
    const opening = this.#opening
    return this.#held === 0 || opening === undefined ? Promise.resolve() : opening.then(DONE)
  }
}
