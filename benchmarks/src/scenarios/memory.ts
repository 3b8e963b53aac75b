// Redis memory for 10,000 active tasks: a task:status, a task:progress and a task:execution entry
// per task, stored as JSON strings (the baseline) and through tiercache's Redis store (envelope
// with expiresAt and graceUntil, msgpack, lz4 above the threshold). Each variant writes into its
// own fresh redis-server, in its own child, and reads the used_memory delta. Clients are imported
// in the children only, so that loading this module keeps the harness process free of them.
import type { Redis } from 'ioredis'
import type { ChildContext, Json, JsonObject, Row, Scenario } from '../scenario.js'

export const TASKS = 10_000

/** TTLs of the seed's families (status 5 min, progress 2 min, execution 1 min). */
const FAMILIES = [
  { name: 'task:status', ttlMs: 5 * 60_000 },
  { name: 'task:progress', ttlMs: 2 * 60_000 },
  { name: 'task:execution', ttlMs: 60_000 },
] as const

type Family = (typeof FAMILIES)[number]['name']

interface TaskEntry {
  family: Family
  id: string
  value: JsonObject
}

function executionSummary(progress: JsonObject): JsonObject {
  const details = (progress.hostDetails ?? []) as JsonObject[]
  const exitCodes: Record<string, number> = {}
  for (const detail of details) {
    if (typeof detail.exitCode === 'number') exitCodes[String(detail.exitCode)] = (exitCodes[String(detail.exitCode)] ?? 0) + 1
  }
  return {
    taskId: progress.taskId ?? null,
    status: progress.status ?? null,
    startedAt: progress.startedAt ?? null,
    finishedAt: null,
    durationMs: null,
    hosts: progress.hosts ?? null,
    exitCodes,
  }
}

/** 10,000 distinct tasks shaped like the fixtures: ids, names and progress vary per task. */
export function activeTaskEntries(fixtures: ChildContext['fixtures'], count = TASKS): TaskEntry[] {
  const entries: TaskEntry[] = []
  for (let i = 0; i < count; i++) {
    const taskId = `task-${String(i + 1).padStart(6, '0')}-${(i * 2654435761 >>> 0).toString(36).slice(0, 6).padEnd(6, 'x')}`
    const progressValue = Math.round(((i % 97) / 97) * 100) / 100
    const vary = (value: JsonObject): JsonObject => ({ ...value, taskId, name: `nightly-deploy-batch-${i % 1000}`, progress: progressValue })
    const progress = vary(fixtures.taskProgress)
    entries.push({ family: 'task:status', id: taskId, value: vary(fixtures.taskStatus) })
    entries.push({ family: 'task:progress', id: taskId, value: progress })
    entries.push({ family: 'task:execution', id: taskId, value: executionSummary(progress) })
  }
  return entries
}

// --quick writes a fifth of the tasks: bytes per entry stay comparable, the run stays short.
const tasksOf = (ctx: Pick<ChildContext, 'quick'>) => (ctx.quick ? TASKS / 5 : TASKS)

const ttlOf = (family: Family) => FAMILIES.find((f) => f.name === family)!.ttlMs

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory')
  const match = /used_memory:(\d+)/.exec(info)
  if (!match) throw new Error('INFO memory has no used_memory')
  return Number(match[1])
}

async function connect(ctx: ChildContext): Promise<Redis> {
  const { Redis } = await import('ioredis')
  const client = new Redis(ctx.redis.port, ctx.redis.host, { lazyConnect: true })
  await client.connect()
  return client
}

async function measureWrites(ctx: ChildContext, write: (entries: TaskEntry[]) => Promise<void>): Promise<{ bytes: number; keys: number }> {
  const admin = await connect(ctx)
  try {
    const entries = activeTaskEntries(ctx.fixtures, tasksOf(ctx))
    const before = await usedMemory(admin)
    const keysBefore = await admin.dbsize()
    await write(entries)
    const keys = (await admin.dbsize()) - keysBefore
    if (keys !== entries.length) throw new Error(`expected ${entries.length} keys written, found ${keys}`)
    return { bytes: (await usedMemory(admin)) - before, keys }
  } finally {
    admin.disconnect()
  }
}

const quickNote = (ctx: Pick<ChildContext, 'quick'>) => (ctx.quick ? { note: `--quick: ${tasksOf(ctx).toLocaleString('en-US')} tasks` } : {})

/** The baseline: `task:<family>:<id>` → JSON string, with the family's TTL. */
export async function jsonRows(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const client = await connect(ctx)
  try {
    const { bytes, keys } = await measureWrites(ctx, async (entries) => {
      for (let i = 0; i < entries.length; i += 1000) {
        const pipeline = client.pipeline()
        for (const entry of entries.slice(i, i + 1000)) pipeline.set(`${entry.family}:${entry.id}`, JSON.stringify(entry.value), 'PX', ttlOf(entry.family))
        await pipeline.exec()
      }
    })
    return [{ name: 'json', variant: 'JSON strings (SET … PX)', baseline: true, bytes, bytesPerEntry: bytes / keys, ...quickNote(ctx) }]
  } finally {
    client.disconnect()
  }
}

/** tiercache's Redis store: the same values as RemoteEntry envelopes (expiresAt, graceUntil). */
export async function tiercacheRows(_args: unknown, ctx: ChildContext): Promise<Row[]> {
  const { redisStore } = await import('@tiercache/redis')
  const store = redisStore({ redis: { host: ctx.redis.host, port: ctx.redis.port }, namespace: 'bench' })
  try {
    await store.ready()
    const now = Date.now()
    const { bytes, keys } = await measureWrites(ctx, async (entries) => {
      for (let i = 0; i < entries.length; i += 500) {
        await store.setMany(
          entries.slice(i, i + 500).map((entry) => ({
            key: { family: `${entry.family}@1`, generation: '', id: entry.id },
            // Every envelope field set: fresh for the family TTL, then a grace period as long again.
            entry: { value: entry.value as Json, expiresAt: now + ttlOf(entry.family), graceUntil: now + 2 * ttlOf(entry.family) },
          })),
        )
      }
    })
    return [{ name: 'tiercache', variant: 'redisStore (msgpack + lz4 ≥ 1 KiB, envelope)', bytes, bytesPerEntry: bytes / keys, ...quickNote(ctx) }]
  } finally {
    await store.close()
  }
}

export const scenario: Scenario = {
  id: 'memory',
  title: 'Redis memory for 10,000 active tasks',
  measures:
    'Redis used_memory delta after writing 10,000 active tasks (task:status + task:progress + task:execution each, 30,000 keys with TTLs) into a fresh redis-server: JSON strings vs tiercache’s store. Run alone: `pnpm bench --only memory`.',
  ratioOf: 'bytes',
  columns: ['bytes', 'bytesPerEntry'],
  goal: 'tiercache ≤ 45% of the memory the same values take as JSON (ratio ≤ 0.45×)',
  async run(ctx) {
    const variants = [
      { entry: 'jsonRows', name: 'json', label: 'JSON strings' },
      { entry: 'tiercacheRows', name: 'tiercache', label: 'tiercache redisStore' },
    ] as const
    const one = async ({ entry, name, label }: (typeof variants)[number]): Promise<Row[]> => {
      ctx.log(`${label} …`)
      // A fresh server per variant: used_memory deltas must not include the other's keys.
      const server = await ctx.startRedis()
      try {
        return await ctx.runInChild('scenarios/memory.ts', entry, undefined, { redis: { host: server.host, port: server.port, url: server.url }, timeoutMs: 120_000 })
      } catch (error) {
        return [{ name, variant: label, note: `failed: ${(error as Error).message.split('\n')[0]}` }]
      } finally {
        await server.stop()
      }
    }
    // Memory figures do not depend on timing, so the variants may run side by side.
    return (await Promise.all(variants.map(one))).flat()
  },
}
