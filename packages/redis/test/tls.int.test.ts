import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  createTlsCertificates,
  defineInvalidationBusContract,
  defineRemoteStoreContract,
  startRedis,
  uniqueNamespace,
  type RedisTlsServer,
} from '@tiercache/testkit'
import { createRedisCache, redisBus, redisStore, type RedisBusOptions, type RedisStore, type RedisStoreOptions } from '../src/index.js'

// The store and bus contracts over TLS (a single node, client certificates, a cluster), and what a
// client that cannot verify the server, or that the server cannot verify, gets: no connection.

// ---- servers, started once per file -------------------------------------------------------------

let plain: Promise<RedisTlsServer> | undefined
let mutual: Promise<RedisTlsServer> | undefined
let cluster: Promise<RedisTlsServer> | undefined
afterAll(async () => {
  await Promise.all([plain, mutual, cluster].map((server) => server?.then((s) => s.stop())))
})

/** TLS, no client certificates required. */
const tlsServer = () => (plain ??= startRedis({ tls: true }))
/** `tls-auth-clients yes`; verbose log, so that a refused handshake is written down. */
const mutualServer = () => (mutual ??= startRedis({ tls: { clientCerts: true }, args: ['--loglevel', 'verbose'] }))

/**
 * A cluster of one master holding every slot, on TLS. `tls-cluster yes` makes CLUSTER SLOTS name
 * the TLS ports to a TLS client (without it, the plain ones); a lone node knows no address of its
 * own until told one.
 */
const tlsCluster = () =>
  (cluster ??= (async () => {
    const server = await startRedis({
      tls: true,
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--tls-cluster', 'yes', '--cluster-announce-ip', '127.0.0.1'],
    })
    await server.command('CLUSTER', 'ADDSLOTSRANGE', 0, 16383)
    await expect.poll(() => server.command('CLUSTER', 'INFO'), { timeout: 10_000 }).toContain('cluster_state:ok')
    return server
  })())

async function storeFixture(redis: RedisStoreOptions['redis']) {
  const open = async () => {
    const store = redisStore({ redis, namespace: uniqueNamespace('tls') })
    if (!(await store.ready())) {
      await store.close()
      throw new Error('the store did not connect over TLS')
    }
    return store
  }
  const stores: RedisStore[] = [await open(), await open()]
  return {
    store: stores[0]!,
    sibling: stores[1]!,
    cleanup: async () => {
      for (const store of stores) {
        await store.clear()
        await store.close()
      }
    },
  }
}

async function busFixture(redis: RedisBusOptions['redis']) {
  const namespace = uniqueNamespace('tls')
  const store = redisStore({ redis: redis as RedisStoreOptions['redis'], namespace })
  const stranger = redisStore({ redis: redis as RedisStoreOptions['redis'], namespace })
  const a = redisBus({ redis: store.client, namespace })
  const b = redisBus({ redis, namespace })
  return {
    a,
    b,
    sharing: { store, stranger },
    cleanup: async () => {
      await Promise.all([a.close(), b.close()])
      await store.clear()
      await Promise.all([store.close(), stranger.close()])
    },
  }
}

// ---- the contracts over TLS -----------------------------------------------------------------------

defineRemoteStoreContract('redisStore over TLS, { host, port: tlsPort, tls: { ca } }', async () => {
  const server = await tlsServer()
  return storeFixture({ host: server.host, port: server.tlsPort, tls: { ca: server.tls.ca } })
})

defineRemoteStoreContract('redisStore over TLS with client certificates, tls: { ca, cert, key }', async () => {
  const server = await mutualServer()
  return storeFixture({ host: server.host, port: server.tlsPort, tls: server.tls })
})

defineInvalidationBusContract('redisBus over TLS with client certificates (the subscriber connection too)', async () => {
  const server = await mutualServer()
  return busFixture({ host: server.host, port: server.tlsPort, tls: server.tls })
})

defineRemoteStoreContract('redisStore over TLS on a cluster, { cluster, tls: { ca } }', async () => {
  const server = await tlsCluster()
  return storeFixture({ cluster: [{ host: server.host, port: server.tlsPort }], tls: { ca: server.tls.ca } })
})

defineInvalidationBusContract('redisBus over TLS on a cluster (the shard subscriber too)', async () => {
  const server = await tlsCluster()
  return busFixture({ cluster: [{ host: server.host, port: server.tlsPort }], tls: { ca: server.tls.ca } })
})

// ---- the server and the refusals ------------------------------------------------------------------

/** A logger that keeps the `err.code` of every connection error the store logs. */
function errorCodes() {
  const codes: (string | undefined)[] = []
  const keep = (fields: { err?: { code?: string } }) => void codes.push(fields.err?.code)
  return { codes, logger: { debug() {}, info() {}, warn: keep, error: keep } }
}

/** Node's codes for a chain it cannot verify (whether the server sends its CA in the chain or not). */
const UNVERIFIED = /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/
const unverified = (codes: readonly (string | undefined)[]) => codes.some((code) => UNVERIFIED.test(code ?? ''))

/** A store that must not connect: its first connection fails; resolves the error codes it logs (filled as they come). */
async function refused(redis: RedisStoreOptions['redis']): Promise<(string | undefined)[]> {
  const { codes, logger } = errorCodes()
  const store = redisStore({ redis, namespace: uniqueNamespace('tls'), logger, connectTimeout: 1_000 })
  onTestFinished(() => store.close())
  expect(await store.connecting()).toBe(false)
  expect(store.client.status).not.toBe('ready')
  return codes
}

const key = (id: string) => ({ family: 'tls@1', generation: '', id })
const entry = (value: unknown) => ({ value, expiresAt: Date.now() + 60_000, graceUntil: Date.now() + 60_000 })

describe('startRedis({ tls })', () => {
  it('adds a TLS port beside the plain one, keeps both across restart(), and removes its certificates on stop()', async () => {
    const server = await startRedis({ tls: true })
    onTestFinished(() => server.stop())
    expect(server.tlsPort).not.toBe(server.port)
    expect(server.tlsUrl).toBe(`rediss://127.0.0.1:${server.tlsPort}`)
    for (const pem of [server.tls.ca, server.tls.cert]) expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/)
    expect(server.tls.key).toMatch(/^-----BEGIN PRIVATE KEY-----/)
    const certFile = (await server.command('CONFIG', 'GET', 'tls-cert-file')).split('\n')[1]!
    expect(existsSync(certFile)).toBe(true)
    const roundTrip = async () => {
      const store = redisStore({ redis: { host: server.host, port: server.tlsPort, tls: { ca: server.tls.ca } }, namespace: uniqueNamespace('tls') })
      try {
        expect(await store.ready()).toBe(true)
        await store.set(key('k'), entry('over tls'))
        expect((await store.get(key('k')))?.value).toBe('over tls')
      } finally {
        await store.close()
      }
    }
    await roundTrip()
    await server.restart()
    expect(await server.command('PING')).toBe('PONG')
    await roundTrip()
    await server.stop()
    expect(existsSync(certFile)).toBe(false)
  })
})

describe('TLS refusals', () => {
  it('client certificates required: without one the server refuses the handshake', async () => {
    const server = await mutualServer()
    await refused({ host: server.host, port: server.tlsPort, tls: { ca: server.tls.ca } })
    await expect.poll(() => readFileSync(join(server.dir, 'redis.log'), 'utf8')).toContain('peer did not return a certificate')
  })

  it('a CA that did not sign the server certificate: no connection', async () => {
    const server = await tlsServer()
    const stranger = createTlsCertificates()
    onTestFinished(() => stranger.remove())
    const codes = await refused({ host: server.host, port: server.tlsPort, tls: { ca: stranger.ca } })
    await expect.poll(() => unverified(codes)).toBe(true)
  })

  it('a rediss:// URL connects with TLS and verifies against the system CAs, which do not hold the test CA', async () => {
    const server = await tlsServer()
    const codes = await refused(server.tlsUrl)
    await expect.poll(() => unverified(codes)).toBe(true)
  })

  it('SNI: servername "localhost" is verified against the certificate (DNS:localhost), another name is refused', async () => {
    const server = await tlsServer()
    const store = redisStore({ redis: { host: server.host, port: server.tlsPort, tls: { ca: server.tls.ca, servername: 'localhost' } }, namespace: uniqueNamespace('tls') })
    onTestFinished(() => store.close())
    expect(await store.ready()).toBe(true)
    await store.set(key('sni'), entry('named'))
    expect((await store.get(key('sni')))?.value).toBe('named')
    const codes = await refused({ host: server.host, port: server.tlsPort, tls: { ca: server.tls.ca, servername: 'example.com' } })
    await expect.poll(() => codes).toContain('ERR_TLS_CERT_ALTNAME_INVALID')
  })

  it('createRedisCache with a wrong CA: every read is served by the loader, and the breaker opens', async () => {
    const server = await tlsServer()
    const stranger = createTlsCertificates()
    onTestFinished(() => stranger.remove())
    const cache = createRedisCache({ redis: { host: server.host, port: server.tlsPort, tls: { ca: stranger.ca } }, namespace: uniqueNamespace('tls'), bus: false })
    onTestFinished(() => cache.close())
    // Past the first connection attempt, L2 calls are no longer held for it: they fail, and count.
    expect(await cache.store.connecting()).toBe(false)
    const values: string[] = []
    for (let i = 0; i < 10; i++) values.push(await cache.getOrSet(`k${i}`, async () => `loaded ${i}`))
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => `loaded ${i}`))
    const stats = cache.stats()
    expect(stats.breaker.state).toBe('open')
    expect(stats.total.l2Errors).toBeGreaterThan(0)
    expect(await cache.ready({ timeout: '200ms' })).toMatchObject({ l2: false })
  })
})
