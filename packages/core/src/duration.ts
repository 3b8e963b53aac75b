import { InvalidOptionsError } from './errors.js'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/

/** A duration: milliseconds, or a string such as `'100ms'`, `'30s'`, `'5m'`, `'1h'`, `'2d'`. */
export type Duration = number | string

/**
 * Converts a duration to milliseconds. Throws `InvalidOptionsError` for negative, non-finite or
 * unparsable input.
 */
export function parseDuration(duration: Duration, path = ''): number {
  if (typeof duration === 'number') {
    if (Number.isFinite(duration) && duration >= 0) return duration
    throw new InvalidOptionsError(path, `expected a non-negative finite number of milliseconds (got ${duration})`)
  }
  if (typeof duration === 'string') {
    const match = PATTERN.exec(duration)
    if (match !== null) return Number(match[1]) * (UNITS[match[2] as string] as number)
  }
  throw new InvalidOptionsError(
    path,
    `expected a duration in milliseconds or a string like '100ms', '30s', '5m', '1h', '2d' (got ${JSON.stringify(duration)})`,
  )
}
