import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { createClient, resolveConnection } from '../src/connection.js'

const settings = { commandTimeout: 1000, connectTimeout: 1000, maxRetriesPerRequest: 1 }

/** The options of the client the store would create (it is disconnected at once: nothing listens). */
function optionsOf(input: unknown): Record<string, unknown> {
  const resolved = resolveConnection(input)
  if (resolved.kind === 'client') throw new Error('expected connection options')
  const client = createClient(resolved, settings) as Redis
  client.on('error', () => {})
  client.disconnect()
  return client.options as unknown as Record<string, unknown>
}

describe('TLS through Sentinel', () => {
  const sentinel = { sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'main' }

  it('applies `tls` to the primary the sentinels name (ioredis ignores it without enableTLSForSentinelMode)', () => {
    const options = optionsOf({ ...sentinel, tls: { ca: 'CA PEM', servername: 'redis.internal' } })
    expect(options.enableTLSForSentinelMode).toBe(true)
    expect(options.tls).toEqual({ ca: 'CA PEM', servername: 'redis.internal' })
    expect(options.sentinelTLS).toBeUndefined()
  })

  it('speaks TLS to the sentinels themselves with `sentinelTls`', () => {
    const options = optionsOf({ ...sentinel, tls: true, sentinelTls: { ca: 'CA PEM' } })
    expect(options.enableTLSForSentinelMode).toBe(true)
    expect(options.sentinelTLS).toEqual({ ca: 'CA PEM' })
  })

  it('stays plain text when neither is asked for', () => {
    const options = optionsOf(sentinel)
    expect(options.enableTLSForSentinelMode).toBeFalsy()
    expect(options.tls).toBeUndefined()
  })

  it('refuses a sentinelTls that is neither a boolean nor TLS options, naming it', () => {
    expect(() => resolveConnection({ ...sentinel, sentinelTls: 'yes' })).toThrow(/sentinelTls/)
  })
})
