import type { z } from 'zod'
import { InvalidOptionsError } from '@tiercache/core'

/**
 * Parses the options of one of the package's factories: the parsed options, or an
 * `InvalidOptionsError` naming the first bad field (under `prefix`, e.g. `ttl.task:status`).
 */
export function parseOptions<S extends z.ZodType>(schema: S, options: unknown, prefix: readonly string[] = []): z.output<S> {
  const parsed = schema.safeParse(options)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  throw new InvalidOptionsError([...prefix, ...(issue?.path ?? [])].join('.'), issue?.message ?? 'invalid', { cause: parsed.error })
}
