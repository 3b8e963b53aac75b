/** Executables the testkit launches: found without a shell, `which` or a package manager. */
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** Finds an executable by name on PATH (no shell, no `which`). */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** Whether `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}
