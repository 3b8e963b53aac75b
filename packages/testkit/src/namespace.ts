import { randomBytes } from 'node:crypto'

let counter = 0

/**
 * A key namespace no other test (or test run sharing the same server through REDIS_URL) uses.
 * Tests pass it as the cache namespace so they never see each other's keys.
 */
export function uniqueNamespace(label = 't'): string {
  counter += 1
  return `${label}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`
}
