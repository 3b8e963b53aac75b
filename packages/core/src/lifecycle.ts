/**
 * Whether the cache is closed, and the writes still running: `close()` lets those finish (L2 and
 * the bus still open) before it closes the ports. Every step reads `closed` from here, so that a
 * late result (a lease granted after its timeout, a fill after close) never lands.
 */
export class Lifecycle {
  #closed = false
  readonly #writes = new Set<Promise<unknown>>()

  get closed(): boolean {
    return this.#closed
  }

  close(): void {
    this.#closed = true
  }

  track<T>(write: Promise<T>): Promise<T> {
    this.#writes.add(write)
    const done = () => this.#writes.delete(write)
    write.then(done, done)
    return write
  }

  /** Settles once every write in progress has, including the ones those started meanwhile. */
  async drain(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes])
  }
}
