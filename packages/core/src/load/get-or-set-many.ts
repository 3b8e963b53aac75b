/**
 * `getOrSetMany`: the batch read-through. One call walks down once for all its keys:
 *
 *   l1 hits → keys with a load under way join it; an entry served at once (eager refresh due,
 *   expired) takes the single-key path, which answers now and reloads behind
 *     → a flight per key still missing (single-key callers join it) → one L2 batch (`readMany`)
 *     → a lease per key still missing: held elsewhere → that key waits for its fill on the
 *       single-key path; granted → L2 read once more for those (a fill that landed since answers,
 *       the lease handed back with it), the rest and the keys L2 failed for → the batch
 *     → one loader call with the batch's keys (or params), in order → each value lands as a
 *       single-key load would (L1; L2 under its lease).
 *
 * A failed or timed-out batch load serves each key's stale copy within grace; a key without one
 * fails the call. The soft timeout does not apply (no one copy stands for the batch).
 */
import { type Duration, parseDuration } from '../duration.js'
import { CacheClosedError, InvalidOptionsError, LoaderError, LoaderTimeoutError } from '../errors.js'
import type { BatchLoader, FamilyContext, Loader } from '../family.js'
import type { GetOrSetOptions } from '../options.js'
import type { StoreKey } from '../ports.js'
import { tagsOfEntry } from '../tags/tag-options.js'
import type { Flight } from './flights.js'
import { type CallOptions, type GetOrSet, type GetOrSetParts, type StaleCopy, standing } from './get-or-set.js'
import type { Fill } from './land.js'
import type { Lifetime } from './loader-runner.js'

/** What a single-key miss needs, and the single-key path, for the keys that leave the batch. */
export interface GetOrSetManyParts extends GetOrSetParts {
  readonly single: GetOrSet
}

/** One distinct key of the batch still to load. */
interface Slot {
  readonly id: string
  readonly l1Key: string
  readonly params: unknown
  /** What the loader is given for it: the key, or the family's params. */
  readonly arg: unknown
  readonly flight: Flight
  readonly settle: (value: unknown, error?: unknown) => void
  stale: StaleCopy | undefined
  fill: Fill | undefined
}

export class GetOrSetMany {
  readonly #p: GetOrSetManyParts

  constructor(parts: GetOrSetManyParts) {
    this.#p = parts
  }

  async getOrSetMany(
    fc: FamilyContext,
    ids: readonly string[],
    params: readonly unknown[] | undefined,
    loader: BatchLoader<unknown, unknown>,
    options: GetOrSetOptions | undefined,
  ): Promise<unknown[]> {
    const { life, keys, local, telemetry, policy, generations, flights, single, tags: table } = this.#p
    if (life.closed) throw new CacheClosedError()
    if (typeof loader !== 'function') throw new InvalidOptionsError('loader', `expected a function (missing) => values (got ${typeof loader})`)
    if (!Array.isArray(ids)) throw new InvalidOptionsError('keys', `expected an array (got ${typeof ids})`)
    const call = single.callOptions(fc, options)
    const results = new Array<unknown>(ids.length)
    if (ids.length === 0) return results
    const argOf = (i: number): unknown => (params === undefined ? ids[i] : params[i])
    // One load per key however often the batch names it.
    const wanted = new Map<string, number[]>()
    const waits: Promise<void>[] = []
    const slots: Slot[] = []
    let l1Keys = ids.map((id, i) => keys.l1Key(fc, id, params?.[i]))
    if (l1Keys.includes(undefined)) {
      await generations.ensure(params === undefined ? [''] : params.flatMap((p) => keys.allGenerationNames(fc, p)))
      l1Keys = ids.map((id, i) => keys.l1Key(fc, id, params?.[i]))
    }
    for (let i = 0; i < ids.length; i++) {
      const l1Key = l1Keys[i]
      const id = ids[i] as string
      if (l1Key === undefined) {
        // Generations unreadable: the single-key path answers from the loader alone.
        waits.push(single.getOrSet(fc, id, params?.[i], this.#one(loader, argOf(i)), options).then((v) => void (results[i] = v)))
        continue
      }
      const same = wanted.get(l1Key)
      if (same !== undefined) {
        same.push(i)
        continue
      }
      wanted.set(l1Key, [i])
      fc.adaptive?.record(l1Key)
      const entry = local.entry(l1Key)
      if (entry !== undefined && local.settled(entry)) {
        telemetry.l1Hit(fc)
        results[i] = policy.out(entry.value)
        continue
      }
      const again = () => single.miss(fc, id, l1Key, params?.[i], this.#one(loader, argOf(i)), options, undefined)
      const joined =
        entry !== undefined && (local.expired(entry) || local.fresh(entry))
          ? single.miss(fc, id, l1Key, params?.[i], this.#one(loader, argOf(i)), options, entry)
          : flights.join(l1Key, table.changes, again)
      if (joined !== undefined) {
        waits.push(joined.then((v) => void (results[i] = v)))
        continue
      }
      const stale = local.staleOf(l1Key, entry)
      slots.push(this.#slot(id, l1Key, params?.[i], argOf(i), stale === undefined ? undefined : single.staleCopy(stale.value, local.tagsOf(stale), local.tagVersionOf(stale)), results, i))
    }
    if (slots.length > 0) waits.push(this.#load(fc, slots, loader, call, options))
    try {
      await allOrFirstError(waits)
    } catch (error) {
      // Joiners of a key nothing answered must not wait forever (settling twice changes nothing).
      for (const slot of slots) slot.settle(undefined, error)
      throw error
    } finally {
      for (const slot of slots) flights.endLoad(slot.l1Key, slot.flight)
    }
    for (const indexes of wanted.values()) for (const i of indexes.slice(1)) results[i] = results[indexes[0] as number]
    return results
  }

  /** A flight for one key of the batch, settled when the batch knows its value. */
  #slot(id: string, l1Key: string, params: unknown, arg: unknown, stale: StaleCopy | undefined, results: unknown[], index: number): Slot {
    const flight = this.#p.flights.startLoad(l1Key, this.#p.tags.changes)
    let settle!: (value: unknown, error?: unknown) => void
    const promise = new Promise<unknown>((resolve, reject) => {
      settle = (value, error) => {
        // Settled, the key's flight is over: a later caller starts its own (a key the loader left out loads then).
        this.#p.flights.endLoad(l1Key, flight)
        if (error === undefined) {
          results[index] = value
          resolve(value)
        } else reject(error)
      }
    })
    // Joiners see a failure; with none, it is the batch's caller's alone.
    promise.catch(() => {})
    flight.promise = promise
    return { id, l1Key, params, arg, flight, settle, stale, fill: undefined }
  }

  /** The keys still missing after L1: L2 in one batch, leases, then one loader call. */
  async #load(fc: FamilyContext, slots: Slot[], loader: BatchLoader<unknown, unknown>, call: CallOptions, options: GetOrSetOptions | undefined): Promise<void> {
    const { remote, stampede, keys, land, pending, tags, single, flights, generations } = this.#p
    const { settings } = call
    const familyTags = fc.tags
    const tagged = call.tags !== undefined || familyTags !== undefined
    const tagVersion = tagged ? (tags.needsSequence ? await tags.tagVersionNow() : tags.latest) : undefined
    for (const slot of slots) slot.flight.tagVersion = tagVersion
    let batch = slots
    const leaving: Promise<void>[] = []
    if (remote !== undefined && stampede !== undefined && !remote.isOpen && (await generations.ensure(['']))) {
      const located = batch.filter((s) => !pending.holds(s.l1Key)).map((slot) => ({ slot, storeKey: keys.storeKey(fc, slot.id, slot.params) }))
      const inL2 = located.filter((l): l is { slot: Slot; storeKey: StoreKey } => l.storeKey !== undefined)
      const reads = inL2.length === 0 ? [] : await remote.readMany(fc, inL2.map((l) => l.storeKey))
      const answered = new Set<Slot>()
      const toLease: { slot: Slot; storeKey: StoreKey }[] = []
      inL2.forEach(({ slot, storeKey }, j) => {
        const read = reads[j]
        if (read === undefined || read.kind === 'down') return
        if (read.kind === 'fresh') {
          answered.add(slot)
          slot.settle(land.fromL2(fc, slot.l1Key, slot.flight, read.entry, read.value, settings))
          return
        }
        if (read.kind === 'stale') {
          const copy = single.staleCopy(read.value, read.entry.tags, read.entry.tagVersion ?? 0)
          if (read.entry.expired === true && standing(copy, slot.flight) !== undefined) {
            // Served now; the single-key path, finding it expired in L1, reloads it behind.
            answered.add(slot)
            const value = land.fromL2(fc, slot.l1Key, slot.flight, read.entry, read.value, settings)
            flights.endLoad(slot.l1Key, slot.flight)
            const entry = this.#p.local.peek(slot.l1Key)
            if (entry !== undefined) void single.miss(fc, slot.id, slot.l1Key, slot.params, this.#one(loader, slot.arg), options, entry).catch(() => {})
            slot.settle(value)
            return
          }
          slot.stale ??= copy
        }
        toLease.push({ slot, storeKey })
      })
      const grants = await Promise.all(toLease.map(({ slot, storeKey }) => stampede.tryLease(storeKey, slot.l1Key)))
      toLease.forEach(({ slot, storeKey }, j) => {
        const grant = grants[j]
        if (typeof grant === 'string') slot.fill = { storeKey, token: grant }
        else if (grant === false && settings.stampedeProtection) {
          // Another process loads this key: it waits for that fill as a single-key miss would.
          answered.add(slot)
          flights.endLoad(slot.l1Key, slot.flight)
          leaving.push(
            single.miss(fc, slot.id, slot.l1Key, slot.params, this.#one(loader, slot.arg), options, undefined).then(
              (value) => slot.settle(value),
              (error: unknown) => {
                slot.settle(undefined, error)
                throw error
              },
            ),
          )
        }
      })
      // As with a single-key claim: a holder may have filled between the batch read and the grants.
      const granted = toLease.filter(({ slot }) => slot.fill !== undefined)
      const again = granted.length === 0 ? [] : await remote.readMany(fc, granted.map((l) => l.storeKey))
      granted.forEach(({ slot, storeKey }, j) => {
        const read = again[j]
        const fill = slot.fill
        if (read?.kind !== 'fresh' || fill === undefined) return
        stampede.fill(storeKey, fill.token, read.entry)
        slot.fill = undefined
        answered.add(slot)
        slot.settle(land.fromL2(fc, slot.l1Key, slot.flight, read.entry, read.value, settings))
      })
      batch = batch.filter((slot) => !answered.has(slot))
    }
    await allOrFirstError([...(batch.length > 0 ? [this.#loadBatch(fc, batch, loader, call)] : []), ...leaving])
  }

  /** One loader call for `batch`; each value lands, or each key falls back on its stale copy. */
  async #loadBatch(fc: FamilyContext, batch: Slot[], loader: BatchLoader<unknown, unknown>, call: CallOptions): Promise<void> {
    const { telemetry, runner, land, single } = this.#p
    const { settings } = call
    const first = batch[0] as Slot
    telemetry.count(fc, 'misses', batch.length)
    const args = batch.map((slot) => slot.arg)
    const lifetimes = new Map<unknown, Lifetime>()
    const choose = (item: unknown, field: keyof Lifetime, value: Duration): void => {
      const lifetime = lifetimes.get(item) ?? {}
      lifetime[field] = parseDuration(value, field === 'ttl' ? 'setTtl' : 'setGrace')
      lifetimes.set(item, lifetime)
    }
    const batchLoader: Loader<unknown> = (ctx) =>
      loader(args, { signal: ctx.signal, setTtl: (item, ttl) => choose(item, 'ttl', ttl), setGrace: (item, grace) => choose(item, 'grace', grace) })
    const outcome = await runner.run({
      fc,
      id: first.id,
      keys: batch.length,
      loader: batchLoader,
      settings: settings.timeout === undefined ? settings : { ...settings, timeout: undefined },
      stale: undefined,
      flight: first.flight,
      release: () => {},
      late: () => {},
    })
    let failure: unknown
    if (outcome.kind === 'value') {
      let values: unknown[]
      try {
        values = valuesInOrder(outcome.value, args)
      } catch (error) {
        return this.#failed(fc, batch, new LoaderError(first.id, error))
      }
      batch.forEach((slot, i) => {
        const tagsOf = slot.flight.tagVersion === undefined ? undefined : (value: unknown) => tagsOfEntry(call.tags, fc.tags, slot.params, value)
        const lifetime = single.lifetime(fc, slot.l1Key, lifetimes.get(slot.arg))
        slot.settle(land.loaded(slot.l1Key, slot.flight, slot.fill, values[i], settings, tagsOf, lifetime))
      })
      return
    }
    if (outcome.kind === 'error') {
      telemetry.count(fc, 'loaderErrors')
      telemetry.emit('loader-error', { key: first.id, family: fc.id, error: outcome.error })
      telemetry.logger.warn({ err: outcome.error, key: first.id, keys: batch.length, family: fc.id }, 'tiercache batch loader failed')
      failure = new LoaderError(first.id, outcome.error)
    } else {
      telemetry.count(fc, 'loaderTimeouts')
      failure = new LoaderTimeoutError(first.id, settings.hardTimeout as number)
    }
    return this.#failed(fc, batch, failure)
  }

  /** Each key serves its stale copy within grace; the call fails if one has none. */
  #failed(fc: FamilyContext, batch: Slot[], failure: unknown): void {
    const { land } = this.#p
    let failed = false
    for (const slot of batch) {
      const stale = standing(slot.stale, slot.flight)
      if (stale !== undefined) slot.settle(land.stale(fc, slot.id, stale, 'loader-error'))
      else {
        failed = true
        slot.settle(undefined, failure)
      }
    }
    if (failed) throw failure
  }

  /** The batch loader for one key, as a single-key loader. */
  #one(loader: BatchLoader<unknown, unknown>, arg: unknown): Loader<unknown> {
    return async (ctx) => {
      const context = { signal: ctx.signal, setTtl: (_: unknown, ttl: Duration) => ctx.setTtl(ttl), setGrace: (_: unknown, grace: Duration) => ctx.setGrace(grace) }
      return (valuesInOrder(await loader([arg], context), [arg]) as unknown[])[0]
    }
  }
}

/** Waits for every one of `work` (none is left unobserved), then throws the first failure. */
async function allOrFirstError(work: readonly Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(work)
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

/** A batch loader's answer as values in the order of `args`: an array of as many, or a Map. */
function valuesInOrder(answer: unknown, args: readonly unknown[]): unknown[] {
  if (answer instanceof Map) return args.map((arg) => answer.get(arg))
  if (Array.isArray(answer) && answer.length === args.length) return answer
  const got = Array.isArray(answer) ? `an array of ${answer.length}` : answer === null ? 'null' : typeof answer
  throw new InvalidOptionsError('loader', `expected an array of ${args.length} values in key order, or a Map (got ${got})`)
}
