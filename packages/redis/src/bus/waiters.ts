/** Callers waiting for a state that another part of the bus reaches: woken all at once. */
export class Waiters {
  #waiting: (() => void)[] = []

  /**
   * Resolves true at once when `done()` holds, else true at the next `wake()` (whatever the state
   * then: close() wakes everyone), false when `timeoutMs` passed first. Never rejects.
   */
  wait(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const index = this.#waiting.indexOf(wake)
        if (index >= 0) this.#waiting.splice(index, 1)
        resolve(false)
      }, timeoutMs)
      timer.unref()
      const wake = () => {
        clearTimeout(timer)
        resolve(true)
      }
      this.#waiting.push(wake)
    })
  }

  wake(): void {
    if (this.#waiting.length === 0) return
    for (const wake of this.#waiting.splice(0)) wake()
  }
}
