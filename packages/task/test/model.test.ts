import { describe, expect, it } from 'vitest'
import { taskFixture, type TaskFixtureName } from '@tiercache/testkit'
import {
  InvalidTaskQueryError,
  TaskListPageSchema,
  TaskProgressViewSchema,
  TaskStatusViewSchema,
  hostTasksKey,
  parseHostTasksQuery,
  parseId,
  parseTaskListQuery,
  taskListKey,
} from '@tiercache/task'

const fixture = (name: `${TaskFixtureName}.json`): unknown => taskFixture(name.slice(0, -'.json'.length) as TaskFixtureName)

describe('view schemas', () => {
  it('accept the fixtures as they are', () => {
    expect(TaskStatusViewSchema.parse(fixture('task-status.json')).hosts).toMatchObject({ total: 50, pending: 0 })
    expect(TaskProgressViewSchema.parse(fixture('task-progress.json')).hostDetails).toHaveLength(20)
    expect(TaskListPageSchema.parse(fixture('task-list-page.json')).items).toHaveLength(20)
  })

  it('reject a value of another shape', () => {
    expect(TaskStatusViewSchema.safeParse({ taskId: 't-1', status: 'done' }).success).toBe(false)
  })
})

describe('list-query canonicalisation', () => {
  it('gives one key for the same query in any order, with or without defaults, numbers or strings', () => {
    const keys = new Set(
      [
        {},
        { page: 1 },
        { size: 20, page: 1 },
        { sort: 'createdAt:desc', size: '20', page: '1' },
        { page: 1, size: 20, sort: 'createdAt:desc', status: undefined },
      ].map((q) => taskListKey(parseTaskListQuery(q))),
    )
    expect(keys.size).toBe(1)
    expect(taskListKey(parseTaskListQuery({ status: 'running', hostId: 'h-0001' }))).toBe(
      taskListKey(parseTaskListQuery({ hostId: 'h-0001', page: '1', status: 'running' })),
    )
  })

  it('gives different keys to different queries', () => {
    const queries = [{}, { page: 2 }, { size: 10 }, { status: 'running' }, { hostId: 'h-1' }, { sort: 'name:asc' }] as const
    const keys = new Set(queries.map((q) => taskListKey(parseTaskListQuery(q))))
    expect(keys.size).toBe(queries.length)
  })

  it.each([
    [{ page: 0 }, 'page'],
    [{ page: 1.5 }, 'page'],
    [{ page: '-1' }, 'page'],
    [{ size: 101 }, 'size'],
    [{ size: 0 }, 'size'],
    [{ status: 'done' }, 'status'],
    [{ hostId: 'h 1' }, 'hostId'],
    [{ hostId: '*' }, 'hostId'],
    [{ sort: 'progress' }, 'sort'],
    [{ pageSize: 10 }, '(query)'],
  ])('rejects %j naming the field', (query, field) => {
    const error = (() => {
      try {
        parseTaskListQuery(query as never)
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(error).toBeInstanceOf(InvalidTaskQueryError)
    expect((error as InvalidTaskQueryError).code).toBe('E_INVALID_QUERY')
    expect((error as InvalidTaskQueryError).field).toBe(field)
    if (field !== '(query)') expect((error as Error).message).toContain(field)
  })

  it('returns frozen queries and canonical host-task keys', () => {
    const q = parseHostTasksQuery({ size: '5' })
    expect(Object.isFrozen(q)).toBe(true)
    expect(hostTasksKey('h-1', q)).toBe(hostTasksKey('h-1', parseHostTasksQuery({ page: 1, size: 5 })))
    expect(() => parseHostTasksQuery({ size: 500 })).toThrow(/size/)
  })

  it('validates ids', () => {
    expect(parseId('task-000001-abc', 'taskId')).toBe('task-000001-abc')
    for (const bad of ['', 'a b', 'x{y}', 'a*', '../x', 'a'.repeat(129), 7]) {
      expect(() => parseId(bad, 'taskId')).toThrow(InvalidTaskQueryError)
    }
  })
})
