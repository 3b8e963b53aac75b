import { inject } from 'vitest'
import { startRedis } from './redis-server.js'
import { uniqueNamespace } from './namespace.js'
import { TestkitError } from './errors.js'

declare module 'vitest' {
  export interface ProvidedContext {
    tiercacheRedisUrl: string
  }
}

interface GlobalSetupContext {
  provide(key: 'tiercacheRedisUrl', value: string): void
}

/**
 * Vitest `globalSetup`: one shared single-node Redis for the whole run, or the server in
 * `REDIS_URL` when set. Tests that kill, pause or restart Redis start their own with `startRedis()`.
 */
export default async function setup({ provide }: GlobalSetupContext): Promise<() => Promise<void>> {
  const external = process.env.REDIS_URL
  if (external) {
    provide('tiercacheRedisUrl', external)
    return async () => {}
  }
  const server = await startRedis()
  provide('tiercacheRedisUrl', server.url)
  return () => server.stop()
}

export interface SharedRedis {
  /** URL of the shared server (the testkit's own, or REDIS_URL). */
  readonly url: string
  readonly host: string
  readonly port: number
  /** A namespace of this test's own: use it as the key prefix. */
  readonly namespace: string
}

/** The run's shared Redis, with a fresh namespace for the calling test. */
export function sharedRedis(label?: string): SharedRedis {
  const url = inject('tiercacheRedisUrl')
  if (!url) throw new TestkitError('E_NO_SHARED_REDIS', 'no shared Redis: add "@tiercache/testkit/vitest" to vitest globalSetup')
  const parsed = new URL(url)
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    namespace: uniqueNamespace(label),
  }
}
