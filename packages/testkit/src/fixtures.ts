import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The task-domain objects the tests and the benchmark suite measure on (see `fixtures/README.md`). */
export type TaskFixtureName = 'task-progress' | 'task-status' | 'task-list-page'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export interface TaskFixtures {
  /** A task with 20 host details: the `task:progress` view (3769 B as compact JSON). */
  readonly taskProgress: JsonObject
  /** The same task without host details: the `task:status` view (235 B). */
  readonly taskStatus: JsonObject
  /** A page of 20 task summaries: a `task:list` view (4752 B). */
  readonly taskListPage: JsonObject
}

const NAMES: readonly TaskFixtureName[] = ['task-progress', 'task-status', 'task-list-page']

/** Where a fixture's JSON file is; the same path from the sources and from the built package. */
export function taskFixturePath(name: TaskFixtureName): string {
  if (!NAMES.includes(name)) throw new TypeError(`name must be one of ${NAMES.join(', ')} (got ${JSON.stringify(name)})`)
  return fileURLToPath(new URL(`../fixtures/${name}.json`, import.meta.url))
}

/** A fresh parse of one fixture: callers may mutate what they get. */
export function taskFixture(name: TaskFixtureName): JsonObject {
  return JSON.parse(readFileSync(taskFixturePath(name), 'utf8')) as JsonObject
}

/** All three fixtures, freshly parsed. */
export function taskFixtures(): TaskFixtures {
  return { taskProgress: taskFixture('task-progress'), taskStatus: taskFixture('task-status'), taskListPage: taskFixture('task-list-page') }
}
