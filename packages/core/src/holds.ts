/**
 * Names held, counted: each `add` needs its `remove`, so two holders of one name release it once
 * both are done. The pending keys of background writes, the generations and the tags this process
 * is moving in the background hold their names here.
 */
export class Holds {
  readonly #counts = new Map<string, number>()

  get size(): number {
    return this.#counts.size
  }

  /** Cheap when nothing is held (the common case, on read paths). */
  has(name: string): boolean {
    return this.#counts.size !== 0 && this.#counts.has(name)
  }

  add(names: readonly string[]): void {
    for (const name of names) this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1)
  }

  remove(names: readonly string[]): void {
    for (const name of names) {
      const count = this.#counts.get(name)
      if (count === undefined) continue
      if (count <= 1) this.#counts.delete(name)
      else this.#counts.set(name, count - 1)
    }
  }
}
