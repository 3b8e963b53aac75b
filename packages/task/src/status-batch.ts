import type { TaskStatusView } from './model.js'
import type { TaskRepository } from './repository.js'

/** Collects `task:status` loads of one turn of the event loop into one repository query. */
export class StatusBatch {
  #pending = new Map<string, { resolve: (v: TaskStatusView | null) => void; reject: (e: unknown) => void }[]>()
  #scheduled = false
  readonly #repository: TaskRepository

  constructor(repository: TaskRepository) {
    this.#repository = repository
  }

  load(id: string): Promise<TaskStatusView | null> {
    return new Promise((resolve, reject) => {
      const waiting = this.#pending.get(id)
      if (waiting) waiting.push({ resolve, reject })
      else this.#pending.set(id, [{ resolve, reject }])
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    const batch = this.#pending
    this.#pending = new Map()
    this.#scheduled = false
    const ids = [...batch.keys()]
    this.#repository.getTaskStatusViews(ids).then(
      (views) => ids.forEach((id, i) => batch.get(id)?.forEach((w) => w.resolve(views[i] ?? null))),
      (error: unknown) => batch.forEach((waiting) => waiting.forEach((w) => w.reject(error))),
    )
  }
}
