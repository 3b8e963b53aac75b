import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { FLAG_EXPIRED, HEADER_BYTES, READ_VERSIONS } from './codec.js'

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

/**
 * The L2 changes of a round trip, then its bus message, in one script (standalone Redis).
 * KEYS: per set its value and lease key, per delete the same, per bump its generation key.
 * ARGV[1..3] how many sets, deletes and bumps; ARGV[4] the channel ('' for no message);
 * ARGV[5] '1' to publish sharded; then per set its bytes and TTL in ms (0 or less: the value has
 * expired, it is removed); then the message in parts, cut where the bumped values go.
 * A set voids the key's lease (DEL, then SET), as `set` does; a delete removes value and lease.
 * The bumped values are written into the message as msgpack integers (cmsgpack) and returned.
 */
export const APPLY = luaScript(`
local sets, deletes, bumps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local k, a = 1, 6
for _ = 1, sets do
  local ttl = tonumber(ARGV[a + 1])
  if ttl > 0 then
    redis.call('DEL', KEYS[k + 1])
    redis.call('SET', KEYS[k], ARGV[a], 'PX', ttl)
  else
    redis.call('UNLINK', KEYS[k], KEYS[k + 1])
  end
  k, a = k + 2, a + 2
end
for _ = 1, deletes do
  redis.call('UNLINK', KEYS[k], KEYS[k + 1])
  k = k + 2
end
local values = {}
for i = 1, bumps do
  values[i] = redis.call('INCR', KEYS[k])
  k = k + 1
end
if ARGV[4] ~= '' then
  local parts = { ARGV[a] }
  for i = 1, bumps do
    parts[#parts + 1] = cmsgpack.pack(values[i])
    parts[#parts + 1] = ARGV[a + i]
  end
  redis.call(ARGV[5] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[4], table.concat(parts))
end
return values
`)

/**
 * KEYS[1] the namespace's tag hash; ARGV the tags. Moves the sequence (field '') one on and gives
 * every tag that version, at once; returns it. One key: any slot in a cluster.
 */
export const INVALIDATE_TAGS = luaScript(`
local version = redis.call('HINCRBY', KEYS[1], '', 1)
for i = 1, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], version)
end
return version
`)

/**
 * KEYS[1] value, KEYS[2] lease; ARGV[1] `at`, epoch ms. Soft invalidation in place: sets the
 * codec's expired flag and brings expiresAt (header bytes 2–9) down to `at` when later, with one
 * SETRANGE of bytes 1–9. The rest of the entry (version, graceUntil, tags, body) and the key's TTL
 * stay as they were. The lease goes, present value or not, as with any write: a load that began
 * before may have read what the expiry says changed, so its fill must not land. Bytes too short or
 * of a version the codec does not read are left alone (a reader drops those anyway). Value and
 * lease share a hash tag: single-slot in a cluster. Returns 1 when the entry was rewritten.
 */
export const SOFT_EXPIRE = luaScript(`
redis.call('DEL', KEYS[2])
if redis.call('STRLEN', KEYS[1]) < ${HEADER_BYTES} then return 0 end
local head = redis.call('GETRANGE', KEYS[1], 0, 9)
local version = string.byte(head, 1)
if ${READ_VERSIONS.map((version) => `version ~= ${version}`).join(' and ')} then return 0 end
local expiresAt = struct.unpack('>d', head, 3)
local at = tonumber(ARGV[1])
if at < expiresAt then expiresAt = at end
redis.call('SETRANGE', KEYS[1], 1, string.char(bit.bor(string.byte(head, 2), ${FLAG_EXPIRED})) .. struct.pack('>d', expiresAt))
return 1
`)
