/**
 * Single-flight and invalidation epochs.
 *
 * One load (`getOrSet` miss) and one L2 read (`get` miss) at most per L1 key and process: later
 * callers join it. An invalidation of the key (a local write, a bus message, an L1 flush) voids
 * the flights that started before it and takes them out of the maps: their result still answers
 * the callers already waiting (they asked before the write), but lands neither in L1 nor, through
 * the voided lease, in L2; callers after the write start a new flight. `epoch` counts
 * invalidations, for batch reads that cannot hold one flight per key.
 */

/** One load (or L2 read) in progress for one L1 key. */
export interface Flight {
  /**
   * What joiners get; dropped once the flight has left its map. Maps under churn were seen to keep
   * removed entries reachable to scavenges until the next full GC: a settled flight must not
   * hold its promise (and through it the value), or every scavenge copies those values again.
   */
  promise: Promise<unknown> | undefined
  /** An invalidation of the key arrived after the flight started: its result must not land. */
  void: boolean
  /**
   * Voided by an L1 flush rather than by an invalidation of its key, so no write of the key voided
   * its lease in L2 on the way: `startup`, the first subscription's drop (the result stays out of
   * L1 but may still fill L2 through its lease, which any write made since has voided there), or
   * `flush` (a recovery, a namespace bump, a clear). Undefined otherwise.
   */
  voidedBy: 'startup' | 'flush' | undefined
  /** A soft timeout answered with a stale value; the loader still runs and ends the flight. */
  background: boolean
  /** A load that may be tagged: the tag sequence known before its loader ran (see `TagTable`). */
  tagVersion: number | undefined
  /** `TagTable.changes` when the load began: a caller after a later change checks the outcome. */
  tagChanges: number
  /**
   * Its value's tags were invalidated after `tagVersion` (or could not be told): it did not land,
   * and a caller that joined after that invalidation loads again.
   */
  tagsStale: boolean
}

export function newFlight(): Flight {
  return { promise: undefined, void: false, voidedBy: undefined, background: false, tagVersion: undefined, tagChanges: 0, tagsStale: false }
}

export class Flights {
  /** Bumped by every invalidation; batch reads compare it to decide whether they may fill. */
  epoch = 0
  readonly #loads = new Map<string, Flight>()
  readonly #reads = new Map<string, Flight>()

  /** The key's load in progress, to join. */
  load(key: string): Promise<unknown> | undefined {
    return this.#loads.get(key)?.promise
  }

  /**
   * Joins the key's load (`reads`: or its L2 read). A caller that comes after a tag invalidation
   * the load did not see (`tagChanges` past the flight's: one applied, or one of this process
   * under way) gets its value only if the value's tags stood when it was answered; else it starts
   * over (`again`).
   */
  join(key: string, tagChanges: number, again: () => Promise<unknown>, reads = false): Promise<unknown> | undefined {
    const load = this.#loads.get(key)
    // A read without a loader does not wait on a load running behind an answer already given
    // (a soft timeout, an eager refresh, an expired entry's reload): it reads L2 itself.
    const flight = reads && (load === undefined || load.background) ? this.#reads.get(key) : load
    const promise = flight?.promise
    if (flight === undefined || promise === undefined) return undefined
    if (tagChanges <= flight.tagChanges) return promise
    return promise.then((value) => (flight.tagsStale ? again() : value))
  }

  startLoad(key: string, tagChanges = 0): Flight {
    const flight = newFlight()
    flight.tagChanges = tagChanges
    this.#loads.set(key, flight)
    return flight
  }

  startRead(key: string): Flight {
    const flight = newFlight()
    this.#reads.set(key, flight)
    return flight
  }

  /** The flight is over: later callers start their own. */
  endLoad(key: string, flight: Flight): void {
    if (this.#loads.get(key) === flight) this.#loads.delete(key)
    flight.promise = undefined
  }

  endRead(key: string, flight: Flight): void {
    if (this.#reads.get(key) === flight) this.#reads.delete(key)
    flight.promise = undefined
  }

  /** Voids the key's flights. */
  invalidate(key: string): void {
    this.epoch++
    const load = this.#loads.get(key)
    if (load !== undefined) {
      load.void = true
      this.#loads.delete(key)
    }
    const read = this.#reads.get(key)
    if (read !== undefined) {
      read.void = true
      this.#reads.delete(key)
    }
  }

  /** Voids every flight (an L1 flush). `startup`: the first subscription's drop (see `Flight`). */
  invalidateAll(startup: boolean): void {
    this.epoch++
    for (const flights of [this.#loads, this.#reads]) {
      for (const flight of flights.values()) {
        if (!flight.void) flight.voidedBy = startup ? 'startup' : 'flush'
        flight.void = true
      }
      flights.clear()
    }
  }
}
