/**
 * The admin handler's routes: which request path names which operation, and which method each
 * accepts. Paths are compared segment by segment as they arrive, never decoded or normalised, so
 * that `tasks/../stats` or `%73tats` is no route rather than a way around one; only the id
 * segment is decoded, then held to the id schema.
 */
import { IdSchema } from './model.js'

export type Route =
  | { kind: 'stats' }
  | { kind: 'all' }
  | { kind: 'task'; id: string }
  | { kind: 'host'; id: string }
  | { kind: 'warmup' }
  | { kind: 'cleanup' }
  | { kind: 'dashboard' }
  | { kind: 'sign-in' }
  | { kind: 'sign-out' }

/** An id segment that is no id: answered 400 rather than 404, since the path has a route's shape. */
export interface InvalidId {
  invalid: string
}

export const ALLOWED: Record<Route['kind'], string> = {
  stats: 'GET',
  all: 'DELETE',
  task: 'DELETE',
  host: 'DELETE',
  warmup: 'POST',
  cleanup: 'POST',
  dashboard: 'GET',
  'sign-in': 'POST',
  'sign-out': 'POST',
}

/** The single-segment routes under the prefix. */
const NAMED: Readonly<Record<string, Route>> = Object.freeze({
  stats: { kind: 'stats' },
  warmup: { kind: 'warmup' },
  cleanup: { kind: 'cleanup' },
  dashboard: { kind: 'dashboard' },
  'sign-in': { kind: 'sign-in' },
  'sign-out': { kind: 'sign-out' },
})

/** The path of a request URL: everything before the query. */
export const pathOf = (url: string): string => {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Whether `path` is `prefix` itself or lies under it. */
export const isUnder = (prefix: string, path: string): boolean => path === prefix || path.startsWith(`${prefix}/`)

/** The route `path` names under `prefix` (`<basePath>/cache`), or undefined for none. */
export function routeOf(prefix: string, path: string): Route | InvalidId | undefined {
  if (path === prefix) return { kind: 'all' }
  if (!path.startsWith(`${prefix}/`)) return undefined
  const parts = path.slice(prefix.length + 1).split('/')
  if (parts.length === 1) return Object.hasOwn(NAMED, parts[0] as string) ? NAMED[parts[0] as string] : undefined
  if (parts.length === 2 && (parts[0] === 'tasks' || parts[0] === 'hosts')) {
    const what = parts[0] === 'tasks' ? 'task' : 'host'
    let raw: string
    try {
      raw = decodeURIComponent(parts[1] as string)
    } catch {
      return { invalid: 'the id is not valid percent-encoding' }
    }
    // Letters, digits and `_ . -` only, starting with a letter or digit: no separator, dot
    // segment, glob or control character survives the schema.
    const id = IdSchema.safeParse(raw)
    if (!id.success) return { invalid: `invalid ${what} id: ${id.error.issues[0]?.message ?? 'invalid'}` }
    return { kind: what, id: id.data }
  }
  return undefined
}
