import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

/**
 * A Lua script run by EVALSHA, falling back to EVAL when the server does not know it (first use,
 * a restarted server, a failover). Nothing is registered on the client, so a client the caller
 * passed in is left exactly as it was.
 */
export interface LuaScript {
  readonly sha: string
  run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | Buffer | number)[]): Promise<unknown>
}

export function luaScript(source: string): LuaScript {
  const sha = createHash('sha1').update(source).digest('hex')
  return {
    sha,
    async run(client, keys, args) {
      try {
        return await client.evalsha(sha, keys.length, ...keys, ...args)
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
        return client.eval(source, keys.length, ...keys, ...args)
      }
    },
  }
}

/**
 * KEYS[1] value, KEYS[2] lease; ARGV[1] token, ARGV[2] bytes, ARGV[3] TTL in ms.
 * Lands the fill only while the caller still holds the lease: a `set` or `delete` of the key
 * removed the lease, and an expired lease may have been taken by someone else. The lease is
 * released either way it was ours. Value and lease share a hash tag: single-slot in a cluster.
 * Returns 1 when the value was written, 0 otherwise.
 */
export const FILL_WITH_LEASE = luaScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
local ttl = tonumber(ARGV[3])
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
return 1
`)
