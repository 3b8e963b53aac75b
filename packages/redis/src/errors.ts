import { CacheClosedError, ValueTooLargeError as CoreValueTooLargeError } from '@tiercache/core'

export { CacheClosedError, InvalidOptionsError, L2UnavailableError, SerializationError } from '@tiercache/core'

/** Core's ValueTooLargeError (same code, `instanceof` holds), naming the Redis key as well. */
export class ValueTooLargeError extends CoreValueTooLargeError {
  readonly key: string | undefined

  constructor(bytes: number, limit: number, key?: string) {
    super(bytes, limit)
    this.key = key
    if (key) this.message = `value of "${key}" is ${bytes} bytes, above maxValueBytes (${limit} bytes)`
  }
}

/** Core's CacheClosedError (code `E_CLOSED`, `instanceof` holds), naming the bus and the call made after close(). */
export class BusClosedError extends CacheClosedError {
  readonly channel: string

  constructor(channel: string, call: string) {
    super(`the Redis bus on "${channel}"`)
    this.channel = channel
    this.message = `${call} after close() of the Redis bus on "${channel}": create a new bus with redisBus()`
  }
}
