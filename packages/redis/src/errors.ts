import { ValueTooLargeError as CoreValueTooLargeError } from '@tiercache/core'

export { InvalidOptionsError, SerializationError } from '@tiercache/core'

/** Core's ValueTooLargeError (same code, `instanceof` holds), naming the Redis key as well. */
export class ValueTooLargeError extends CoreValueTooLargeError {
  readonly key: string | undefined

  constructor(bytes: number, limit: number, key?: string) {
    super(bytes, limit)
    this.key = key
    if (key) this.message = `value of "${key}" is ${bytes} bytes, above maxValueBytes (${limit} bytes)`
  }
}
