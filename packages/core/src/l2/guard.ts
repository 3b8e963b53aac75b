import CircuitBreaker from 'opossum'
import { L2TimeoutError, L2UnavailableError, TierCacheError } from '../errors.js'
import { l2Channel } from '../diagnostics.js'
import type { RemoteStore } from '../ports.js'
import { type BreakerState, LatencyReservoir } from '../stats.js'

export interface GuardOptions {
  /** The cache's name, in the `tiercache:l2` trace context. */
  readonly name: string
  readonly timeout: number
  readonly volumeThreshold: number
  readonly errorThresholdPercentage: number
  readonly resetTimeout: number
  readonly rollingCountTimeout: number
}

export interface GuardHooks {
  /** An L2 call failed, timed out, or was refused by the open breaker. */
  onError(operation: string, error: TierCacheError): void
  onStateChange(state: BreakerState): void
}

type Action = (store: RemoteStore) => Promise<unknown>

/**
 * Errors about the caller's data, raised before anything reaches the store: they say nothing
 * about the store's health, so they must not count towards opening the breaker (a caller writing
 * oversized values would otherwise cut L2 off for everyone).
 */
const CALLER_ERROR_CODES: ReadonlySet<unknown> = new Set(['E_VALUE_TOO_LARGE', 'E_SERIALIZATION'])

/** Whether an L2 error is the caller's data at fault, not the store. */
export function isCallerDataError(error: unknown): boolean {
  return CALLER_ERROR_CODES.has((error as { code?: unknown } | null)?.code)
}

/**
 * The one door to the remote store. Every call gets a timeout and passes the circuit breaker;
 * failures come out as `L2UnavailableError` / `L2TimeoutError` and are reported to the hooks,
 * so callers only decide what to fall back to, never how to log or count.
 */
export class L2Guard {
  readonly store: RemoteStore
  readonly latency = new LatencyReservoir()
  #state: BreakerState = 'closed'
  #transitions = 0
  readonly #breaker: CircuitBreaker<[Action], unknown>
  readonly #deadlines: Deadlines | undefined
  readonly #hooks: GuardHooks
  readonly #timeout: number
  readonly #name: string
  /** The store's first connection, while it is being made (see `RemoteStore.connecting`). */
  #opening: Promise<boolean> | undefined

  constructor(store: RemoteStore, options: GuardOptions, hooks: GuardHooks) {
    this.store = store
    this.#deadlines = options.timeout > 0 && options.timeout !== Infinity ? new Deadlines(options.timeout) : undefined
    this.#hooks = hooks
    this.#timeout = options.timeout
    this.#name = options.name
    this.#opening = store.connecting?.()
    void this.#opening?.then(() => (this.#opening = undefined))
    // The timeout is ours (so it carries our error type); opossum only counts and trips.
    this.#breaker = new CircuitBreaker<[Action], unknown>((action: Action) => action(store), {
      timeout: false,
      volumeThreshold: options.volumeThreshold,
      errorThresholdPercentage: options.errorThresholdPercentage,
      resetTimeout: options.resetTimeout,
      rollingCountTimeout: options.rollingCountTimeout,
      // opossum counts a filtered error as a success (a half-open probe failing this way closes
      // the breaker): the store was not reached, and the next call tests it again anyway.
      errorFilter: isCallerDataError,
      // By default opossum emits a snapshot every second (bucket interval) and computes latency
      // percentiles over the window, concatenating and sorting every call's latency of the last
      // 10 s, on each snapshot and each failure: at L2 rates that showed in profiles as CPU and
      // GC. Nothing here listens to snapshots, and the guard keeps its own latency reservoir.
      enableSnapshots: false,
      rollingPercentilesEnabled: false,
    })
    this.#breaker.on('open', () => this.#transition('open'))
    this.#breaker.on('halfOpen', () => this.#transition('half-open'))
    this.#breaker.on('close', () => this.#transition('closed'))
  }

  /** True while the breaker refuses calls: callers skip L2 instead of queuing behind it. */
  get isOpen(): boolean {
    return this.#breaker.opened
  }

  get state(): BreakerState {
    return this.#state
  }

  get transitions(): number {
    return this.#transitions
  }

  run<T>(operation: string, action: (store: RemoteStore) => Promise<T>): Promise<T> {
    // Traced only while someone listens (see diagnostics.ts): otherwise one property read.
    if (l2Channel.start.hasSubscribers) return l2Channel.tracePromise(() => this.#run(operation, action), { cache: this.#name, operation })
    return this.#run(operation, action)
  }

  #run<T>(operation: string, action: (store: RemoteStore) => Promise<T>): Promise<T> {
    if (this.#opening !== undefined) return this.#afterOpening(this.#opening, operation, action)
    const started = performance.now()
    const deadlines = this.#deadlines
    const timed: Action = deadlines === undefined ? action : (store) => deadlines.wrap(action(store), operation)
    return (this.#breaker.fire(timed) as Promise<T>).then(
      (value) => {
        this.latency.record(performance.now() - started)
        return value
      },
      (error: unknown) => {
        const wrapped = wrap(operation, error)
        this.#hooks.onError(operation, wrapped)
        throw wrapped
      },
    )
  }

  /**
   * A call issued while the store's first connection is being made waits for it, within the L2
   * timeout, instead of failing at a client that has no offline queue: connecting is not
   * failing. A call still waiting at the timeout fails, but is not counted by the breaker (the
   * store was never asked); once the attempt ended, calls pass the breaker as usual, so a Redis
   * that is down from the start opens it as fast as one that goes down later.
   */
  async #afterOpening<T>(opening: Promise<boolean>, operation: string, action: (store: RemoteStore) => Promise<T>): Promise<T> {
    const timeout = this.#timeout
    let timer: ReturnType<typeof setTimeout> | undefined
    const settled =
      timeout > 0 && timeout !== Infinity
        ? await Promise.race([opening, new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, timeout, 'timeout')))])
        : await opening
    clearTimeout(timer)
    if (settled === 'timeout') {
      const error = new L2UnavailableError(`L2 ${operation} skipped: the first connection to the store was still being made after ${timeout} ms`)
      this.#hooks.onError(operation, error)
      throw error
    }
    return this.#run(operation, action)
  }

  shutdown(): void {
    this.#deadlines?.stop()
    this.#breaker.shutdown()
  }

  #transition(state: BreakerState): void {
    if (state === this.#state) return
    this.#state = state
    this.#transitions++
    this.#hooks.onStateChange(state)
  }
}

function wrap(operation: string, error: unknown): TierCacheError {
  if (error instanceof TierCacheError) return error
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'EOPENBREAKER') return new L2UnavailableError(`L2 ${operation} skipped: circuit breaker open`, { cause: error })
  if (code === 'ESHUTDOWN') return new L2UnavailableError(`L2 ${operation} refused: cache closed`, { cause: error })
  const message = error instanceof Error ? error.message : String(error)
  return new L2UnavailableError(`L2 ${operation} failed: ${message}`, { cause: error })
}

interface Pending {
  readonly deadline: number
  readonly operation: string
  /** Cleared once the call settles or times out: a settled call is unlinked and holds nothing. */
  reject: ((error: unknown) => void) | undefined
  prev: Pending | undefined
  next: Pending | undefined
}

/**
 * Per-call deadlines without a timer per call: creating and clearing a timer costs about as much
 * as the breaker itself (≈2 µs measured), on the path of every L2 call. One unref'd interval,
 * alive only while calls are in flight, rejects the overdue ones; a call times out between `ms`
 * and `ms + ms/4` (at least 1 ms) after it started.
 *
 * The calls in flight form a linked list in start order, which is deadline order (one `ms` for
 * all): a sweep stops at the first call not yet due. Not a Set: with calls added and deleted at
 * L2 rates, a Set kept settled calls (and, through their promises, their values) reachable to
 * scavenges until the next full GC, so every scavenge copied them again (11–17 ms instead of
 * under 1 ms with 64 gets in flight). An unlinked call keeps no references.
 */
class Deadlines {
  #head: Pending | undefined
  #tail: Pending | undefined
  readonly #ms: number
  readonly #tick: number
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(ms: number) {
    this.#ms = ms
    this.#tick = Math.max(1, Math.floor(ms / 4))
  }

  wrap<T>(promise: Promise<T>, operation: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { deadline: performance.now() + this.#ms, operation, reject, prev: this.#tail, next: undefined }
      if (this.#tail === undefined) this.#head = pending
      else this.#tail.next = pending
      this.#tail = pending
      if (this.#timer === undefined) {
        this.#timer = setInterval(() => this.#sweep(), this.#tick)
        this.#timer.unref?.()
      }
      promise.then(
        (value) => {
          this.#unlink(pending)
          resolve(value)
        },
        (error: unknown) => {
          this.#unlink(pending)
          reject(error)
        },
      )
    })
  }

  #unlink(pending: Pending): void {
    if (pending.reject === undefined) return
    const { prev, next } = pending
    if (prev === undefined) this.#head = next
    else prev.next = next
    if (next === undefined) this.#tail = prev
    else next.prev = prev
    pending.prev = undefined
    pending.next = undefined
    pending.reject = undefined
  }

  #sweep(): void {
    const now = performance.now()
    for (let pending = this.#head; pending !== undefined && pending.deadline <= now; pending = this.#head) {
      const reject = pending.reject as (error: unknown) => void
      this.#unlink(pending)
      reject(new L2TimeoutError(pending.operation, this.#ms))
    }
    if (this.#head === undefined && this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
