import { afterEach, beforeEach, describe, expect, it } from 'vitest'

// The task adapter's types, declared here by shape: the task package's tests import the testkit,
// so the testkit must not import the task package.
type TaskStatus = 'pending' | 'running' | 'success' | 'failed' | 'cancelled'
type ExecutionStatus = TaskStatus | 'timeout'

export interface ContractTask {
  readonly id: string
  readonly status: TaskStatus
  readonly hostIds: readonly string[]
  readonly startedAt: string | null
  readonly finishedAt: string | null
}

export interface ContractExecution {
  readonly hostId: string
  readonly status: ExecutionStatus
  readonly exitCode: number | null
  readonly output: string
  readonly startedAt: number | null
  readonly finishedAt: number | null
}

export interface ContractWriteResult {
  readonly task: ContractTask
  readonly statusChanged: boolean
  readonly executionsChanged: boolean
}

export interface ContractCommandResult {
  status: ExecutionStatus
  exitCode?: number | null
  output?: string
}

/** The part of a `TaskRepository` (`@tiercache/task`) the contract drives. */
export interface ContractTaskRepository {
  upsertHosts(hosts: readonly { id: string; ip: string }[]): Promise<void>
  createTask(input: { name: string; command: string; hostIds: string[] }): Promise<ContractTask>
  getTask(id: string): Promise<ContractTask | null>
  startTask(id: string): Promise<ContractWriteResult>
  cancelTask(id: string): Promise<ContractWriteResult>
  updateTaskStatus(id: string, status: TaskStatus): Promise<ContractWriteResult>
  recordCommandResult(taskId: string, hostId: string, result: ContractCommandResult): Promise<ContractWriteResult & { readonly execution: ContractExecution }>
  getTaskProgressView(id: string): Promise<{ readonly status: TaskStatus; readonly hostDetails: readonly ContractExecution[] } | null>
}

/** What a task-repository contract run needs from the implementation under test. */
export interface TaskRepositoryFixture {
  /** A repository on an empty database whose times come from the clock it was given. */
  readonly repository: ContractTaskRepository
  /** Closes the repository and removes its database. */
  cleanup(): Promise<void>
}

const HOSTS = ['web-1', 'web-2', 'web-3'] as const
const T0 = Date.UTC(2025, 0, 1)
const MAX_OUTPUT_CHARS = 4096
const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Registers the contract of the task state machine as vitest tests: legal and illegal transitions,
 * the auto-finish of a running task, late command results and overrides of finished tasks. Every
 * `TaskRepository` (SQLite, PostgreSQL, a third party's) must pass it for the cached service's
 * invalidation map to hold. `factory` gets the clock the repository must take its times from.
 * Errors are checked by their `code`.
 */
export function defineTaskRepositoryContract(name: string, factory: (clock: { now: () => number }) => Promise<TaskRepositoryFixture>): void {
  describe(`TaskRepository contract: ${name}`, () => {
    let fixture: TaskRepositoryFixture
    let repo: ContractTaskRepository
    let clock = T0

    const tick = (ms: number): number => (clock += ms)
    const executions = async (id: string): Promise<Record<string, ContractExecution>> => {
      const view = await repo.getTaskProgressView(id)
      return Object.fromEntries((view?.hostDetails ?? []).map((e) => [e.hostId, e]))
    }
    const create = () => repo.createTask({ name: 'rollout', command: 'deploy.sh', hostIds: [...HOSTS] })
    const running = async (): Promise<ContractTask> => {
      const task = await create()
      tick(1000)
      return (await repo.startTask(task.id)).task
    }
    /** A task brought to `status` through legal writes only. */
    const taskIn = async (status: TaskStatus): Promise<ContractTask> => {
      if (status === 'pending') return create()
      if (status === 'cancelled') return (await repo.cancelTask((await running()).id)).task
      const task = await running()
      if (status === 'running') return task
      tick(1000)
      for (const host of HOSTS) {
        const failed = status === 'failed' && host === 'web-3'
        await repo.recordCommandResult(task.id, host, { status: failed ? 'failed' : 'success', exitCode: failed ? 1 : 0, output: 'done' })
      }
      return (await repo.getTask(task.id)) as ContractTask
    }

    beforeEach(async () => {
      clock = T0
      fixture = await factory({ now: () => clock })
      repo = fixture.repository
      await repo.upsertHosts(HOSTS.map((id, i) => ({ id, ip: `10.0.0.${i + 1}` })))
    })
    afterEach(async () => {
      await fixture.cleanup()
    })

    describe('create and start', () => {
      it('creates a pending task with one pending execution per host', async () => {
        const task = await create()
        expect(task).toMatchObject({ status: 'pending', hostIds: [...HOSTS], startedAt: null, finishedAt: null })
        expect(await repo.getTask(task.id)).toEqual(task)
        const all = await executions(task.id)
        expect(Object.values(all).map((e) => [e.hostId, e.status, e.startedAt, e.finishedAt])).toEqual(HOSTS.map((h) => [h, 'pending', null, null]))
      })

      it('starts a pending task: running from now, its pending executions running from now', async () => {
        const task = await create()
        const at = tick(1000)
        const started = await repo.startTask(task.id)
        expect(started).toMatchObject({ statusChanged: true, executionsChanged: true, task: { status: 'running', startedAt: iso(at), finishedAt: null } })
        expect(Object.values(await executions(task.id)).map((e) => [e.status, e.startedAt])).toEqual(HOSTS.map(() => ['running', at]))
      })

      it.each(['running', 'success', 'failed', 'cancelled'] as const)('refuses to start a %s task, changing nothing', async (status) => {
        const task = await taskIn(status)
        const before = await repo.getTaskProgressView(task.id)
        await expect(repo.startTask(task.id)).rejects.toMatchObject({ code: 'E_INVALID_TRANSITION' })
        expect(await repo.getTaskProgressView(task.id)).toEqual(before)
      })
    })

    describe('cancel', () => {
      it('cancels a pending task: finished now, never started, every execution cancelled', async () => {
        const task = await create()
        const at = tick(500)
        const cancelled = await repo.cancelTask(task.id)
        expect(cancelled).toMatchObject({ statusChanged: true, executionsChanged: true, task: { status: 'cancelled', startedAt: null, finishedAt: iso(at) } })
        expect(Object.values(await executions(task.id)).map((e) => [e.status, e.finishedAt])).toEqual(HOSTS.map(() => ['cancelled', at]))
      })

      it('cancels a running task: unfinished executions cancelled now, finished ones keep their result', async () => {
        const task = await running()
        tick(1000)
        await repo.recordCommandResult(task.id, 'web-1', { status: 'success', exitCode: 0, output: 'ok' })
        const finishedAt = clock
        const at = tick(1000)
        const cancelled = await repo.cancelTask(task.id)
        expect(cancelled.task).toMatchObject({ status: 'cancelled', startedAt: task.startedAt, finishedAt: iso(at) })
        const all = await executions(task.id)
        expect(all['web-1']).toMatchObject({ status: 'success', exitCode: 0, output: 'ok', finishedAt })
        expect([all['web-2']?.status, all['web-3']?.status]).toEqual(['cancelled', 'cancelled'])
        expect(all['web-2']?.finishedAt).toBe(at)
      })

      it.each(['success', 'failed', 'cancelled'] as const)('refuses to cancel a %s task, changing nothing', async (status) => {
        const task = await taskIn(status)
        const before = await repo.getTaskProgressView(task.id)
        await expect(repo.cancelTask(task.id)).rejects.toMatchObject({ code: 'E_INVALID_TRANSITION' })
        expect(await repo.getTaskProgressView(task.id)).toEqual(before)
      })
    })

    describe('command results and auto-finish', () => {
      it('finishes a running task once every execution is final: success when all succeeded', async () => {
        const task = await running()
        tick(1000)
        expect((await repo.recordCommandResult(task.id, 'web-1', { status: 'success', exitCode: 0 })).statusChanged).toBe(false)
        expect((await repo.recordCommandResult(task.id, 'web-2', { status: 'success', exitCode: 0 })).task.status).toBe('running')
        const at = tick(2000)
        const last = await repo.recordCommandResult(task.id, 'web-3', { status: 'success', exitCode: 0 })
        expect(last).toMatchObject({ statusChanged: true, task: { status: 'success', startedAt: task.startedAt, finishedAt: iso(at) } })
        expect(last.execution).toMatchObject({ hostId: 'web-3', status: 'success', exitCode: 0, finishedAt: at })
      })

      it.each(['failed', 'timeout', 'cancelled'] as const)('finishes it failed when an execution ends %s', async (status) => {
        const task = await running()
        await repo.recordCommandResult(task.id, 'web-1', { status })
        await repo.recordCommandResult(task.id, 'web-2', { status: 'success', exitCode: 0 })
        const last = await repo.recordCommandResult(task.id, 'web-3', { status: 'success', exitCode: 0 })
        expect(last).toMatchObject({ statusChanged: true, task: { status: 'failed' } })
      })

      it('keeps the task running while an execution is pending or running', async () => {
        const task = await running()
        await repo.recordCommandResult(task.id, 'web-1', { status: 'success', exitCode: 0 })
        await repo.recordCommandResult(task.id, 'web-2', { status: 'success', exitCode: 0 })
        const progress = await repo.recordCommandResult(task.id, 'web-3', { status: 'running', output: 'half way' })
        expect(progress).toMatchObject({ statusChanged: false, task: { status: 'running', finishedAt: null } })
        expect(progress.execution).toMatchObject({ status: 'running', finishedAt: null, output: 'half way' })
      })

      it('does not finish a task that was never started, whatever its hosts report', async () => {
        const task = await create()
        for (const host of HOSTS) {
          const outcome = await repo.recordCommandResult(task.id, host, { status: 'success', exitCode: 0 })
          expect(outcome).toMatchObject({ statusChanged: false, task: { status: 'pending' } })
        }
        expect(Object.values(await executions(task.id)).every((e) => e.status === 'success')).toBe(true)
      })

      it('keeps at most 4096 characters of output; an absent exit code or output keeps the recorded one', async () => {
        const task = await running()
        tick(1000)
        await repo.recordCommandResult(task.id, 'web-1', { status: 'running', exitCode: 7, output: 'x'.repeat(10_000) })
        const at = tick(1000)
        const next = await repo.recordCommandResult(task.id, 'web-1', { status: 'failed' })
        // Started when the task started (not when it reported), finished with its final result.
        expect(next.execution).toMatchObject({ status: 'failed', exitCode: 7, startedAt: Date.parse(task.startedAt as string), finishedAt: at })
        expect(next.execution.output).toHaveLength(MAX_OUTPUT_CHARS)
      })
    })

    describe('late command results (the task is already over)', () => {
      it.each(['success', 'failed', 'cancelled'] as const)(
        'records a final result on its execution and leaves a %s task as it was',
        async (status) => {
          const task = await taskIn(status)
          tick(60_000)
          const late = await repo.recordCommandResult(task.id, 'web-2', { status: 'timeout', exitCode: 124, output: 'late' })
          expect(late).toMatchObject({ statusChanged: false, task: { status, startedAt: task.startedAt, finishedAt: task.finishedAt } })
          expect(late.execution).toMatchObject({ hostId: 'web-2', status: 'timeout', exitCode: 124, output: 'late', finishedAt: clock })
          expect(await repo.getTask(task.id)).toEqual(task)
          expect((await executions(task.id))['web-2']).toMatchObject({ status: 'timeout', exitCode: 124, output: 'late' })
        },
      )

      it.each([
        ['success', 'running'],
        ['failed', 'pending'],
        ['cancelled', 'running'],
      ] as const)('refuses a non-final result on a %s task (%s), changing nothing', async (status, reported) => {
        const task = await taskIn(status)
        const before = await repo.getTaskProgressView(task.id)
        await expect(repo.recordCommandResult(task.id, 'web-1', { status: reported })).rejects.toMatchObject({ code: 'E_INVALID_TRANSITION' })
        expect(await repo.getTaskProgressView(task.id)).toEqual(before)
      })
    })

    describe('updateTaskStatus (the operator\'s override)', () => {
      it('sets startedAt and finishedAt when a pending task is set to a final status', async () => {
        const task = await create()
        const at = tick(1000)
        const done = await repo.updateTaskStatus(task.id, 'success')
        expect(done).toMatchObject({ statusChanged: true, executionsChanged: false, task: { status: 'success', startedAt: iso(at), finishedAt: iso(at) } })
        expect(Object.values(await executions(task.id)).every((e) => e.status === 'pending')).toBe(true)
      })

      it.each(['success', 'failed', 'cancelled'] as const)('reopens a %s task: finishedAt cleared, startedAt kept, executions untouched', async (status) => {
        const task = await taskIn(status)
        const before = await executions(task.id)
        tick(1000)
        const reopened = await repo.updateTaskStatus(task.id, 'running')
        expect(reopened).toMatchObject({ statusChanged: true, executionsChanged: false, task: { status: 'running', finishedAt: null } })
        expect(reopened.task.startedAt).toBe(task.startedAt)
        expect(await executions(task.id)).toEqual(before)
      })

      it('re-labels a finished task keeping when it finished; the same status changes nothing', async () => {
        const task = await taskIn('failed')
        tick(5000)
        const relabelled = await repo.updateTaskStatus(task.id, 'success')
        expect(relabelled).toMatchObject({ statusChanged: true, task: { status: 'success', startedAt: task.startedAt, finishedAt: task.finishedAt } })
        tick(5000)
        const same = await repo.updateTaskStatus(task.id, 'success')
        expect(same).toMatchObject({ statusChanged: false, executionsChanged: false })
        expect(same.task).toEqual(relabelled.task)
      })

      it('a reopened task finishes again with its next final result once every execution is final', async () => {
        const task = await taskIn('failed')
        await repo.updateTaskStatus(task.id, 'running')
        const at = tick(1000)
        const rerun = await repo.recordCommandResult(task.id, 'web-3', { status: 'success', exitCode: 0 })
        expect(rerun).toMatchObject({ statusChanged: true, task: { status: 'success', finishedAt: iso(at) } })
      })
    })

    describe('unknown tasks and hosts', () => {
      it('refuses writes on an unknown task or a host the task was not sent to, by code', async () => {
        for (const write of [
          () => repo.startTask('task-missing'),
          () => repo.cancelTask('task-missing'),
          () => repo.updateTaskStatus('task-missing', 'running'),
          () => repo.recordCommandResult('task-missing', 'web-1', { status: 'success' }),
        ]) {
          await expect(write()).rejects.toMatchObject({ code: 'E_TASK_NOT_FOUND' })
        }
        await expect(repo.createTask({ name: 'n', command: 'c', hostIds: ['web-9'] })).rejects.toMatchObject({ code: 'E_HOST_NOT_FOUND' })
        const task = await repo.createTask({ name: 'n', command: 'c', hostIds: ['web-1'] })
        await expect(repo.recordCommandResult(task.id, 'web-2', { status: 'success' })).rejects.toMatchObject({ code: 'E_HOST_NOT_FOUND' })
        expect(await repo.getTask('task-missing')).toBeNull()
      })
    })
  })
}
