// The public generics, checked by the compiler (`pnpm typecheck` covers tests): what a caller's
// editor infers is part of the API. The lines marked @ts-expect-error must stay errors: calls a
// caller's compiler refuses. Those calls are wrapped in functions never called.
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { createTieredCache, type BatchLoader, type Family, type Loader, type LoaderContext, type TieredCache } from '@tiercache/core'

const cache: TieredCache = createTieredCache()

const TaskStatus = z.object({ id: z.string(), status: z.enum(['pending', 'running', 'success']), hosts: z.number() })
type TaskStatus = z.infer<typeof TaskStatus>

describe('family types', () => {
  it('infers params from key() and the value from a zod schema', () => {
    const status = cache.family({ name: 'types:status', key: (id: string) => id, schema: TaskStatus })
    expectTypeOf(status).toEqualTypeOf<Family<string, TaskStatus>>()
    expectTypeOf(status.get).parameter(0).toEqualTypeOf<string>()
    expectTypeOf(status.get('t-1')).resolves.toEqualTypeOf<TaskStatus | undefined>()
    expectTypeOf(status.peek('t-1')).toEqualTypeOf<TaskStatus | undefined>()
    // @ts-expect-error: a value of another shape is not a TaskStatus
    void (() => status.set('t-1', { id: 't-1', status: 'lost', hosts: 1 }))
    // @ts-expect-error: params are what key() takes
    void (() => status.get(42))
  })

  it('takes object params and an explicit value type without a schema', () => {
    const page = cache.family<{ hostId: string; page: number }, string[]>({ name: 'types:page', key: (p) => `${p.hostId}:${p.page}` })
    expectTypeOf(page.getMany([{ hostId: 'h', page: 1 }])).resolves.toEqualTypeOf<(string[] | undefined)[]>()
    // @ts-expect-error: a missing param field
    void (() => page.get({ hostId: 'h' }))
  })

  it("types the loader's return and context by the family's value", () => {
    const status = cache.family({ name: 'types:loader', key: (id: string) => id, schema: TaskStatus })
    const loader: Loader<TaskStatus> = async (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<LoaderContext<TaskStatus>>()
      expectTypeOf(ctx.staleValue).toEqualTypeOf<TaskStatus | undefined>()
      return { id: ctx.key, status: 'running', hosts: 3 }
    }
    expectTypeOf(status.getOrSet('t-1', loader)).resolves.toEqualTypeOf<TaskStatus>()
    // @ts-expect-error: a loader returning another shape
    void (() => status.getOrSet('t-1', async () => ({ id: 't-1' })))
    // A synchronous loader is fine too.
    expectTypeOf(status.getOrSet('t-1', () => ({ id: 't-1', status: 'success' as const, hosts: 1 }))).resolves.toEqualTypeOf<TaskStatus>()
  })

  it('types getOrSetMany: missing params in, values or a Map out, undefined for the ones left out', () => {
    const status = cache.family({ name: 'types:many', key: (id: string) => id, schema: TaskStatus })
    const batch: BatchLoader<string, TaskStatus> = async (missing) => new Map(missing.map((id) => [id, { id, status: 'pending' as const, hosts: 0 }]))
    expectTypeOf(status.getOrSetMany(['a', 'b'], batch)).resolves.toEqualTypeOf<(TaskStatus | undefined)[]>()
    void status.getOrSetMany(['a'], async (missing) => {
      expectTypeOf(missing).toEqualTypeOf<string[]>()
      return missing.map(() => undefined)
    })
    // @ts-expect-error: values of another shape
    void (() => status.getOrSetMany(['a'], async (missing) => missing.map((id) => ({ id }))))
  })
})

describe('plain-key types', () => {
  it('infers the value of getOrSet and getOrSetMany from the loader', () => {
    expectTypeOf(cache.getOrSet('k', async () => 42)).resolves.toEqualTypeOf<number>()
    expectTypeOf(cache.getOrSetMany(['a'], async (keys) => keys.map((k) => k.length))).resolves.toEqualTypeOf<(number | undefined)[]>()
    expectTypeOf(cache.get<{ n: number }>('k')).resolves.toEqualTypeOf<{ n: number } | undefined>()
    expectTypeOf(cache.get('k')).resolves.toEqualTypeOf<unknown>()
  })
})
