import { fileURLToPath } from 'node:url'
import { startNodeProcess, type NodeProcess } from '@tiercache/testkit'
import { onTestFinished } from 'vitest'

const cacheNode = fileURLToPath(new URL('./fixtures/cache-node.ts', import.meta.url))

/** What a node's `set`/`delete`/`expire` answers. */
export interface WriteAck {
  readonly start: number
  readonly ack: number
  /** The bus sequence the write went out under, or a later one of the same node. */
  readonly seq: number
  /** Nothing failed (L2 or publish) while it ran. */
  readonly clean: boolean
}

export interface ReadResult {
  readonly value: unknown
  readonly start: number
  readonly end: number
}

export interface AppliedEvent {
  readonly source: string
  readonly seq: number
  readonly op: 'delete' | 'generation' | 'tags' | 'expire' | 'clear'
  readonly keys: readonly string[]
  readonly at: number
}

export interface CacheNode {
  readonly name: string
  readonly instanceId: string
  readonly process: NodeProcess
  get(key: string): Promise<ReadResult>
  /** `tags`: the entry's tags. */
  set(key: string, value: unknown, tags?: readonly string[]): Promise<WriteAck>
  delete(key: string): Promise<WriteAck>
  /** Soft invalidation (`cache.expire`): stale, not absent, in L2 and in every L1. */
  expire(key: string): Promise<WriteAck>
  stats(): Promise<NodeStats>
  /** Resolves once this node applied a message of `source` with sequence >= `seq`. */
  applied(source: CacheNode, seq: number): Promise<AppliedEvent>
  /** Resolves at the next health change of this node's bus to `healthy`. */
  health(healthy: boolean): Promise<{ healthy: boolean; at: number }>
}

export interface NodeStats {
  readonly loaderCalls: number
  readonly healthy: boolean
  readonly lastSeq: number
  readonly cache: { readonly busMessagesApplied: number; readonly l1Flushes: number; readonly busHealthy: boolean } & Record<string, unknown>
  readonly bus: { readonly ownIgnored: number; readonly received: number; readonly malformed: number } & Record<string, unknown>
}

/** Per-test timeout of the multi-process tests: starting 4–7 processes on a busy 2-core machine is slow. */
export const PROCESS_TEST_TIMEOUT = 300_000

export interface StartCacheNodesOptions {
  /**
   * `'test'`: stopped when the calling test ends. `'manual'`: the caller stops them with
   * `stopCacheNodes` (processes shared by the tests of a file, started in `beforeAll`).
   * @default 'test'
   */
  readonly stop?: 'test' | 'manual'
}

/**
 * Starts `count` cache processes on one Redis and namespace, each started (bus subscribed and
 * healthy) before it resolves. They are stopped when the test ends (SIGKILL if they hang), unless
 * `options.stop` is `'manual'`.
 */
export async function startCacheNodes(count: number, env: Record<string, string>, options: StartCacheNodesOptions = {}): Promise<CacheNode[]> {
  const processes = await Promise.all(
    // A loaded CI machine can take long to start a process that compiles TypeScript on the fly.
    Array.from({ length: count }, (_, i) => startNodeProcess(cacheNode, { TC_NODE: `n${i}`, ...env }, { readyTimeoutMs: 120_000, timeoutMs: 60_000 })),
  )
  if (options.stop !== 'manual') {
    onTestFinished(async () => {
      await Promise.all(processes.map((p) => p.stop({ timeoutMs: 5_000 })))
    })
  }
  return Promise.all(
    processes.map(async (process, i) => {
      const { instanceId } = await process.call<{ instanceId: string }>('start')
      const node: CacheNode = {
        name: `n${i}`,
        instanceId,
        process,
        get: (key) => process.call('get', { key }),
        set: (key, value, tags) => process.call('set', tags === undefined ? { key, value } : { key, value, tags }),
        delete: (key) => process.call('delete', { key }),
        expire: (key) => process.call('expire', { key }),
        stats: () => process.call('stats'),
        applied(source, seq) {
          const match = (event: AppliedEvent) => event.source === source.instanceId && event.seq >= seq
          const past = process.events.find((e) => e.name === 'bus:applied' && match(e.data as AppliedEvent))
          if (past) return Promise.resolve(past.data as AppliedEvent)
          return process.waitForEvent<AppliedEvent>('bus:applied', match)
        },
        health: (healthy) => process.waitForEvent<{ healthy: boolean; at: number }>('bus-health', (e) => e.healthy === healthy),
      }
      return node
    }),
  )
}

/** Stops nodes started with `stop: 'manual'` (SIGKILL if they hang). */
export async function stopCacheNodes(nodes: readonly CacheNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.process.stop({ timeoutMs: 5_000 })))
}
