/*
 * The error classes of @tiercache/core this package throws. Core's errors module is not
 * published yet; these carry the same names and stable codes so that callers branch on `code`.
 */
export class TierCacheError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** An option failed validation; `path` names it (`redis.port`). */
export class InvalidOptionsError extends TierCacheError {
  readonly path: string

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('E_INVALID_OPTIONS', path ? `${path}: ${message}` : message, options)
    this.path = path
  }
}

/** A value could not be encoded. */
export class SerializationError extends TierCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_SERIALIZATION', message, options)
  }
}

/** A value exceeds `maxValueBytes`; `key` names the entry when known. */
export class ValueTooLargeError extends TierCacheError {
  readonly bytes: number
  readonly limit: number
  readonly key: string | undefined

  constructor(bytes: number, limit: number, key?: string) {
    super('E_VALUE_TOO_LARGE', `value${key ? ` of "${key}"` : ''} is ${bytes} bytes, above maxValueBytes (${limit} bytes)`)
    this.bytes = bytes
    this.limit = limit
    this.key = key
  }
}
