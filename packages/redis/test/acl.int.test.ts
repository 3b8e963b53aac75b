import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  defineInvalidationBusContract,
  defineRemoteStoreContract,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  uniqueNamespace,
  type RedisCluster,
  type RedisSentinel,
  type RedisServer,
  sendCommand,
} from '@tiercache/testkit'
import { redisBus, redisStore, type RedisBusOptions, type RedisStore, type RedisStoreOptions } from '../src/index.js'

// The store and bus contracts run as a least-privilege Redis user: the ACL of docs/operations.md
// ("Least-privilege ACL"), one user per namespace. Afterwards no server has anything in ACL LOG:
// no command, key or channel the SDK used was denied. The last tests show that this check bites.

const PASSWORD = 'acl-test-secret'

// The rules come from the documentation itself, so that what is tested is what it says.
const operations = readFileSync(fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)), 'utf8')

/** The rules of an `ACL SETUSER <user> …` line of docs/operations.md, the first that matches `pattern`. */
function documented(pattern: RegExp): string {
  const match = pattern.exec(operations)
  if (!match?.[1]) throw new Error(`docs/operations.md has no ACL line matching ${String(pattern)}`)
  return match[1]
}
const DATA_LINE = documented(/^ACL SETUSER <user> (.+)$/m)
const SENTINEL_LINE = documented(/`ACL SETUSER <user> (reset on ><password> \+sentinel[^`]*)`/)
const rulesOf = (line: string, namespace = '') => line.replaceAll('<ns>', namespace).replaceAll('<password>', PASSWORD).split(' ')

/** The rules of the documented `ACL SETUSER <user> …` line for `namespace`, and `extra` ones. */
function aclRules(namespace: string, extra: readonly string[] = []): string[] {
  return [...rulesOf(DATA_LINE, namespace), ...extra]
}
/** Added for `mode: 'tracking'`. */
const TRACKING = ['&__redis__:invalidate', '+client|id', '+client|tracking']
/** Added for a cluster. */
const CLUSTER = ['+spublish', '+ssubscribe', '+cluster|slots', '+cluster|info']
/** Added for `db`. */
const SELECT = ['+select']

/** The user ioredis logs in as on the sentinels (`sentinelUsername`), and its documented rules. */
const SENTINEL_USER = 'tiercache-sentinel'
const SENTINEL_RULES = rulesOf(SENTINEL_LINE)

interface Target {
  /** Every server a client of the SDK may reach: each needs the user (ACLs are per server). */
  readonly servers: readonly RedisServer[]
  /** Connection options as `user`. */
  connect(user: string): RedisStoreOptions['redis']
  readonly extra?: readonly string[]
}

/** Creates the user of `namespace` on every server of the target; resolves its name. */
async function createUser(target: Target, namespace: string, extra: readonly string[] = []): Promise<string> {
  const user = `u-${namespace}`
  await Promise.all(target.servers.map((server) => server.command('ACL', 'SETUSER', user, ...aclRules(namespace, [...(target.extra ?? []), ...extra]))))
  return user
}

async function dropUser(target: Target, user: string): Promise<void> {
  await Promise.all(target.servers.map((server) => server.command('ACL', 'DELUSER', user)))
}

async function openStore(target: Target, namespace: string, user: string): Promise<RedisStore> {
  const store = redisStore({ redis: target.connect(user), namespace })
  if (!(await store.ready())) {
    await store.close()
    throw new Error(`the store of ${namespace} did not connect as ${user}`)
  }
  return store
}

/** The contract's store and sibling, each of its own namespace and user. */
async function storeFixture(target: Target) {
  const opened: { store: RedisStore; user: string }[] = []
  for (let i = 0; i < 2; i++) {
    const namespace = uniqueNamespace('acl')
    const user = await createUser(target, namespace)
    opened.push({ store: await openStore(target, namespace, user), user })
  }
  return {
    store: opened[0]!.store,
    sibling: opened[1]!.store,
    cleanup: async () => {
      for (const { store, user } of opened) {
        await store.clear()
        await store.close()
        await dropUser(target, user)
      }
    },
  }
}

/** The contract's two buses, as test/contract sets them up: a on a store's connection, b on its own. */
async function busFixture(target: Target, options: Partial<RedisBusOptions> = {}, extra: readonly string[] = []) {
  const namespace = uniqueNamespace('acl')
  const user = await createUser(target, namespace, extra)
  const store = await openStore(target, namespace, user)
  const stranger = await openStore(target, namespace, user)
  const a = redisBus({ redis: store.client, namespace, ...options })
  const b = redisBus({ redis: target.connect(user) as RedisBusOptions['redis'], namespace, ...options })
  return {
    a,
    b,
    sharing: { store, stranger },
    cleanup: async () => {
      await Promise.all([a.close(), b.close()])
      await store.clear()
      await Promise.all([store.close(), stranger.close()])
      await dropUser(target, user)
    },
  }
}

// ---- the targets, started once per file --------------------------------------------------------

let single: Promise<RedisServer> | undefined
let sentinel: Promise<RedisSentinel> | undefined
let cluster: Promise<RedisCluster> | undefined
afterAll(async () => {
  await Promise.all([single?.then((s) => s.stop()), sentinel?.then((s) => s.stop()), cluster?.then((c) => c.stop())])
})

const singleNode = async (form: 'object' | 'url' | 'db'): Promise<Target> => {
  const server = await (single ??= startRedis())
  return {
    servers: [server],
    connect: (user) =>
      form === 'url'
        ? `redis://${encodeURIComponent(user)}:${encodeURIComponent(PASSWORD)}@${server.host}:${server.port}`
        : { host: server.host, port: server.port, username: user, password: PASSWORD, ...(form === 'db' ? { db: 1 } : {}) },
    ...(form === 'db' ? { extra: SELECT } : {}),
  }
}

const throughSentinel = async (): Promise<Target> => {
  const setup = await (sentinel ??= startRedisSentinel().then(async (started) => {
    await sendCommand(started.sentinel.port, ['ACL', 'SETUSER', SENTINEL_USER, ...SENTINEL_RULES])
    return started
  }))
  return {
    servers: [setup.primary, setup.replica],
    connect: (user) => ({
      sentinels: [...setup.sentinels],
      name: setup.name,
      sentinelUsername: SENTINEL_USER,
      sentinelPassword: PASSWORD,
      username: user,
      password: PASSWORD,
    }),
  }
}

const onCluster = async (): Promise<Target> => {
  const setup = await (cluster ??= startRedisCluster())
  return {
    servers: setup.nodes,
    connect: (user) => ({ cluster: [...setup.startupNodes], username: user, password: PASSWORD }),
    extra: CLUSTER,
  }
}

// ---- the contracts, as the user ----------------------------------------------------------------

defineRemoteStoreContract('redisStore as a least-privilege user, single node ({ username, password })', async () => storeFixture(await singleNode('object')))
defineRemoteStoreContract('redisStore as a least-privilege user, single node (redis://user:password@…)', async () => storeFixture(await singleNode('url')))
defineRemoteStoreContract('redisStore as a least-privilege user, single node, db 1', async () => storeFixture(await singleNode('db')))
defineRemoteStoreContract('redisStore as a least-privilege user, sentinel', async () => storeFixture(await throughSentinel()))
defineRemoteStoreContract('redisStore as a least-privilege user, 3-master cluster', async () => storeFixture(await onCluster()))

defineInvalidationBusContract('redisBus as a least-privilege user, single node', async () => busFixture(await singleNode('object')))
defineInvalidationBusContract('redisBus as a least-privilege user, single node, tracking mode', async () =>
  busFixture(await singleNode('object'), { mode: 'tracking' }, TRACKING),
)
defineInvalidationBusContract('redisBus as a least-privilege user, sentinel', async () => busFixture(await throughSentinel()))
defineInvalidationBusContract('redisBus as a least-privilege user, 3-master cluster (sharded pub/sub)', async () => busFixture(await onCluster()))

// ---- checks --------------------------------------------------------------------------------------

/** A client of the default user (no ACL), for ACL LOG. */
function adminOf(server: { host: string; port: number }): Redis {
  const admin = new Redis({ host: server.host, port: server.port, protocol: 2, lazyConnect: true })
  admin.on('error', () => {})
  onTestFinished(() => void admin.quit().catch(() => admin.disconnect()))
  return admin
}

/** ACL LOG as objects (reason, context, object, username, …). */
async function aclLog(server: { host: string; port: number }): Promise<Record<string, string>[]> {
  const entries = (await adminOf(server).call('ACL', 'LOG')) as unknown[][]
  return entries.map((entry) => {
    const fields: Record<string, string> = {}
    for (let i = 0; i + 1 < entry.length; i += 2) fields[String(entry[i])] = String(entry[i + 1])
    return fields
  })
}

describe('least-privilege ACL', () => {
  it('tests the lines docs/operations.md gives, and the additions it names', () => {
    expect(aclRules('app')).toEqual([
      'reset', 'on', `>${PASSWORD}`, '~app:*', '&app:*',
      '+get', '+mget', '+set', '+del', '+unlink', '+incr', '+hmget', '+scan',
      '+eval', '+evalsha', '+hset', '+hincrby', '+strlen', '+getrange', '+setrange',
      '+publish', '+subscribe', '+ping', '+info', '+client|setname',
    ])
    expect(SENTINEL_RULES).toEqual(['reset', 'on', `>${PASSWORD}`, '+sentinel|get-master-addr-by-name', '+sentinel|sentinels'])
    for (const extra of [TRACKING, CLUSTER, SELECT]) expect(operations).toContain(`\`${extra.join(' ')}\``)
  })

  it('the store, the bus and its subscriber and tracking connections all log in as the user', async () => {
    const target = await singleNode('object')
    const namespace = uniqueNamespace('acl')
    const user = await createUser(target, namespace, TRACKING)
    onTestFinished(() => dropUser(target, user))
    const store = await openStore(target, namespace, user)
    onTestFinished(() => store.close())
    const bus = redisBus({ redis: store.client, namespace, mode: 'tracking' })
    onTestFinished(() => bus.close())
    await bus.start()
    const clients = (await target.servers[0]!.command('CLIENT', 'LIST'))
      .split('\n')
      .filter((line) => / name=tiercache/.test(line))
    // The data connection, the bus's subscriber and its tracking connection.
    expect(clients.map((line) => /name=(\S+)/.exec(line)?.[1]?.split(':')[0]).sort()).toEqual(['tiercache', 'tiercache-bus', 'tiercache-bus-tracking'])
    for (const line of clients) expect(line).toContain(` user=${user} `)
  })

  it('after the contracts, no server logged a denied command, key or channel', async () => {
    const servers: { host: string; port: number }[] = []
    if (single) servers.push(await single)
    if (sentinel) servers.push((await sentinel).primary, (await sentinel).replica, (await sentinel).sentinel)
    if (cluster) servers.push(...(await cluster).nodes)
    // All three shapes ran: a filtered run (-t) proves nothing here.
    expect(servers).toHaveLength(1 + 3 + 3)
    for (const server of servers) expect(await aclLog(server)).toEqual([])
  })

  describe('the check bites: the same user with less', () => {
    /** A fresh server with the user of `namespace`, its rules changed by `change`. */
    async function serverWith(namespace: string, change: (rules: string[]) => string[]): Promise<RedisServer> {
      const server = await startRedis()
      onTestFinished(() => server.stop())
      await server.command('ACL', 'SETUSER', `u-${namespace}`, ...change(aclRules(namespace)))
      return server
    }
    const connect = (server: RedisServer, namespace: string) => ({ host: server.host, port: server.port, username: `u-${namespace}`, password: PASSWORD })
    const key = (id: string) => ({ family: 'acl@1', generation: '', id })

    it('without +info: info() is refused (NOPERM) and ACL LOG names the command', async () => {
      const namespace = uniqueNamespace('acl')
      const server = await serverWith(namespace, (rules) => rules.filter((rule) => rule !== '+info'))
      // ioredis' ready check (INFO) is refused too: it warns and skips the check.
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
      onTestFinished(() => warn.mockRestore())
      const store = redisStore({ redis: connect(server, namespace), namespace })
      onTestFinished(() => store.close())
      expect(await store.ready()).toBe(true)
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/Skipping the ready check because INFO command fails/))
      await expect(store.info()).rejects.toThrow(/NOPERM/)
      expect(await aclLog(server)).toContainEqual(expect.objectContaining({ reason: 'command', object: 'info', username: `u-${namespace}` }))
    })

    it('with a key pattern that leaves out the leases: acquireLease is refused and ACL LOG names the key', async () => {
      const namespace = uniqueNamespace('acl')
      const server = await serverWith(namespace, (rules) => rules.map((rule) => (rule === `~${namespace}:*` ? `~${namespace}:acl@1:*` : rule)))
      const store = redisStore({ redis: connect(server, namespace), namespace })
      onTestFinished(() => store.close())
      expect(await store.ready()).toBe(true)
      expect(await store.get(key('k'))).toBeUndefined()
      await expect(store.acquireLease(key('k'), 1_000)).rejects.toThrow(/NOPERM/)
      expect(await aclLog(server)).toContainEqual(expect.objectContaining({ reason: 'key', object: `${namespace}:lease:acl@1:{k}` }))
    })

    it('with db but without +select: SELECT is refused, ACL LOG names it, and the client stays on db 0', async () => {
      const namespace = uniqueNamespace('acl')
      const server = await serverWith(namespace, (rules) => rules)
      const store = redisStore({ redis: { ...connect(server, namespace), db: 1 }, namespace })
      onTestFinished(() => store.close())
      // ioredis logs the refusal as a connection error and goes on: the connection is ready, on db 0.
      expect(await store.ready()).toBe(true)
      await store.set(key('k'), { value: 1, expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 60_000 })
      expect(await server.command('DBSIZE')).toBe('1')
      expect(await aclLog(server)).toContainEqual(expect.objectContaining({ reason: 'command', object: 'select' }))
    })

    it('a sentinel user without +sentinel|sentinels: the store does not connect and the sentinel ACL LOG names it', async () => {
      const target = await throughSentinel()
      const setup = await sentinel!
      const sentinelUser = 'tiercache-sentinel-narrow'
      await sendCommand(setup.sentinel.port, ['ACL', 'SETUSER', sentinelUser, ...SENTINEL_RULES.filter((rule) => rule !== '+sentinel|sentinels')])
      const namespace = uniqueNamespace('acl')
      const user = await createUser(target, namespace)
      onTestFinished(() => dropUser(target, user))
      const redis = { sentinels: [...setup.sentinels], name: setup.name, sentinelUsername: sentinelUser, sentinelPassword: PASSWORD, username: user, password: PASSWORD }
      const store = redisStore({ redis, namespace })
      onTestFinished(() => store.close())
      await expect.poll(() => aclLog(setup.sentinel)).toContainEqual(expect.objectContaining({ reason: 'command', object: 'sentinel|sentinels', username: sentinelUser }))
      // ioredis takes the refusal for a failed sentinel and keeps trying the sentinels: still connecting.
      expect(store.client.status).toBe('connecting')
    })

    it('without the channels: the bus cannot subscribe and ACL LOG names its channel', async () => {
      const namespace = uniqueNamespace('acl')
      const server = await serverWith(namespace, (rules) => rules.filter((rule) => rule !== `&${namespace}:*`))
      const bus = redisBus({ redis: connect(server, namespace), namespace, connectTimeout: 1_000 })
      onTestFinished(() => bus.close())
      await expect(bus.start()).rejects.toThrow(/could not subscribe/)
      expect(await aclLog(server)).toContainEqual(expect.objectContaining({ reason: 'channel', object: `${namespace}:bus` }))
    })
  })
})
