/** Stable error codes: callers branch on `code`, never on messages. */
export type TierCacheErrorCode =
  | 'E_INVALID_OPTIONS'
  | 'E_LOADER'
  | 'E_LOADER_TIMEOUT'
  | 'E_L2_UNAVAILABLE'
  | 'E_L2_TIMEOUT'
  | 'E_SERIALIZATION'
  | 'E_VALUE_TOO_LARGE'
  | 'E_CLOSED'

/** Base of every error the engine throws. */
export class TierCacheError extends Error {
  readonly code: TierCacheErrorCode

  constructor(code: TierCacheErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** An option failed validation; `path` names it (`l1.maxEntries`). */
export class InvalidOptionsError extends TierCacheError {
  readonly path: string

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('E_INVALID_OPTIONS', path ? `${path}: ${message}` : message, options)
    this.path = path
  }
}

/** The loader failed and no stale copy could stand in; `cause` is the loader's error. */
export class LoaderError extends TierCacheError {
  readonly key: string

  constructor(key: string, cause: unknown) {
    super('E_LOADER', `loader failed for key "${key}": ${describe(cause)}`, { cause })
    this.key = key
  }
}

/** The loader did not answer within `hardTimeout`. */
export class LoaderTimeoutError extends TierCacheError {
  readonly key: string
  readonly timeoutMs: number

  constructor(key: string, timeoutMs: number) {
    super('E_LOADER_TIMEOUT', `loader for key "${key}" did not answer within ${timeoutMs}ms`)
    this.key = key
    this.timeoutMs = timeoutMs
  }
}

/** The remote store failed or its circuit breaker is open. */
export class L2UnavailableError extends TierCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_L2_UNAVAILABLE', message, options)
  }
}

/** A remote store call did not answer within `l2Timeout`. */
export class L2TimeoutError extends TierCacheError {
  readonly timeoutMs: number

  constructor(operation: string, timeoutMs: number) {
    super('E_L2_TIMEOUT', `L2 ${operation} did not answer within ${timeoutMs}ms`)
    this.timeoutMs = timeoutMs
  }
}

/** A value could not be encoded or decoded. */
export class SerializationError extends TierCacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_SERIALIZATION', message, options)
  }
}

/** A value exceeds the configured size limit. */
export class ValueTooLargeError extends TierCacheError {
  readonly bytes: number
  readonly limit: number

  constructor(bytes: number, limit: number) {
    super('E_VALUE_TOO_LARGE', `value of ${bytes} bytes exceeds the limit of ${limit} bytes`)
    this.bytes = bytes
    this.limit = limit
  }
}

/** The cache (or another closable part, e.g. a memory bus) was closed: create a new one. */
export class CacheClosedError extends TierCacheError {
  constructor(what = 'the cache') {
    super('E_CLOSED', `${what} is closed`)
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
