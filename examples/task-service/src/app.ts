/**
 * The HTTP face of the cached task service: its reads and writes as JSON routes, the cache's
 * Prometheus metrics, a health check, and the package's admin endpoints and operator dashboard.
 *
 *   GET    /tasks                             a page of tasks (?page, size, status, hostId, sort)
 *   POST   /tasks                             create a task { name, command, hostIds }
 *   GET    /tasks/:taskId                     status view
 *   GET    /tasks/:taskId/progress            status view plus one line per host
 *   GET    /tasks/:taskId/execution           duration, host counts, exit-code histogram
 *   POST   /tasks/:taskId/start               pending → running
 *   POST   /tasks/:taskId/cancel              pending | running → cancelled
 *   PUT    /tasks/:taskId/status              the operator's override { status }
 *   POST   /tasks/:taskId/hosts/:hostId/result  a host's command result { status, exitCode?, output? }
 *   GET    /hosts/:hostId/tasks               the tasks sent to a host (?page, size)
 *   GET    /stats                             global task statistics
 *   GET    /metrics                           Prometheus text
 *   GET    /health                            liveness, with the cache's Redis state
 *   *      <adminBasePath>/cache[/...]        the admin handler (bearer token or dashboard session)
 *
 * Errors are `{ error: { code, message, field? } }`, the admin handler's shape, so a client reads
 * both alike.
 */
import type { TieredCache } from '@tiercache/core'
import { createAdminHandler, type AdminHandlerOptions, type CachedTaskService, type CommandResult, type HostTasksQueryInput, type NewTask, type TaskListQueryInput, type TaskStatus } from '@tiercache/task'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { Registry } from 'prom-client'

export interface BuildAppOptions {
  /** The cached task service every task route reads and writes through. */
  service: CachedTaskService
  /** The cache under the service: `/health` reports its breaker and bus. */
  cache: TieredCache
  /** The registry the cache is exported to (`prometheusMetrics`), served on `/metrics`. */
  registry: Registry
  /** Bearer token of the admin routes and the dashboard's sign-in (at least 16 characters). */
  adminToken: string
  /**
   * Prefix of the admin routes: `''` serves them at `/cache/...`, `'/ops'` at `/ops/cache/...`.
   * @default ''
   */
  adminBasePath?: string
  /** More options of the admin handler (`dashboardRefresh`, `allowedOrigins`, `secureCookie`, …). */
  admin?: Omit<AdminHandlerOptions, 'token' | 'basePath'>
  /** fastify's logger option. @default false */
  logger?: FastifyServerOptions['logger']
}

/** An error answer: HTTP status, stable code, and the request field at fault when there is one. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

/** Error codes of `@tiercache/task` and `@tiercache/core` → HTTP status. */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  E_INVALID_QUERY: 400,
  E_TASK_NOT_FOUND: 404,
  E_HOST_NOT_FOUND: 404,
  E_INVALID_TRANSITION: 409,
  // Redis or the database failing, or the cache closing while the server drains: worth a retry.
  E_L2_UNAVAILABLE: 503,
  E_L2_TIMEOUT: 503,
  E_LOADER: 503,
  E_LOADER_TIMEOUT: 503,
  E_CLOSED: 503,
}

type TaskParams = { taskId: string }
type HostParams = { hostId: string }

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { service, cache, registry } = options
  const app = Fastify({ logger: options.logger ?? false })

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    const { statusCode, code, message, field } = describe(error)
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    // A 5xx answer names the kind of failure; what failed, exactly, goes to the log only.
    const body = { code, message: statusCode >= 500 ? publicMessage(statusCode) : message, ...(field === undefined ? {} : { field }) }
    if (statusCode === 503) reply.header('retry-after', '1')
    return reply.status(statusCode).send({ error: body })
  })

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'E_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  )

  // ------------------------------------------------------------------ reads

  // Query strings go to the service as they came: it parses them (decimal strings included) and
  // names the parameter it refuses.
  app.get('/tasks', (request) => service.getTasks(request.query as TaskListQueryInput))

  app.get<{ Params: TaskParams }>('/tasks/:taskId', async (request) =>
    found(await service.getTaskStatus(request.params.taskId), request.params.taskId),
  )

  app.get<{ Params: TaskParams }>('/tasks/:taskId/progress', async (request) =>
    found(await service.getTaskProgress(request.params.taskId), request.params.taskId),
  )

  app.get<{ Params: TaskParams }>('/tasks/:taskId/execution', async (request) =>
    found(await service.getTaskExecution(request.params.taskId), request.params.taskId),
  )

  app.get<{ Params: HostParams }>('/hosts/:hostId/tasks', (request) =>
    service.getHostTasks(request.params.hostId, request.query as HostTasksQueryInput),
  )

  app.get('/stats', () => service.getTaskStatistics())

  // ------------------------------------------------------------------ writes

  app.post('/tasks', async (request, reply) => {
    try {
      const task = await service.createTask(bodyOf(request) as NewTask)
      return reply.status(201).header('location', `/tasks/${task.id}`).send(task)
    } catch (error) {
      // An unregistered host in the body is the request's fault, not a missing resource at this URL.
      if (isCode(error, 'E_HOST_NOT_FOUND')) throw new HttpError(422, 'E_HOST_NOT_FOUND', (error as Error).message, 'hostIds')
      throw error
    }
  })

  app.post<{ Params: TaskParams }>('/tasks/:taskId/start', (request) => service.startTask(request.params.taskId))

  app.post<{ Params: TaskParams }>('/tasks/:taskId/cancel', (request) => service.cancelTask(request.params.taskId))

  app.put<{ Params: TaskParams }>('/tasks/:taskId/status', (request) => {
    const { status } = bodyOf(request) as { status?: TaskStatus }
    return service.updateTaskStatus(request.params.taskId, status as TaskStatus)
  })

  app.post<{ Params: TaskParams & HostParams }>('/tasks/:taskId/hosts/:hostId/result', (request) =>
    service.recordCommandResult(request.params.taskId, request.params.hostId, bodyOf(request) as CommandResult),
  )

  // ------------------------------------------------------------------ operations

  app.get('/metrics', async (_request, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()))

  // Live while the process answers: with Redis down the service reads from the database
  // (the breaker), so 'degraded' is reported, not failed.
  app.get('/health', () => {
    const stats = cache.stats()
    const degraded = stats.breaker.state !== 'closed' || !stats.busHealthy
    return { status: degraded ? 'degraded' : 'ok', breaker: stats.breaker.state, busHealthy: stats.busHealthy }
  })

  mountAdmin(app, options)
  return app
}

/**
 * The admin handler is a node:http handler that owns every path under `<basePath>/cache`: it reads
 * (and bounds) the request body itself, checks the token or the dashboard's session, and answers
 * 404 for what is no route of its own. So the request is handed over in `onRequest`, before
 * fastify parses a body (the sign-in form is urlencoded, which fastify would refuse), and the
 * handler sees the raw URL, whose segments it compares undecoded.
 */
function mountAdmin(app: FastifyInstance, options: BuildAppOptions): void {
  const basePath = options.adminBasePath ?? ''
  const handler = createAdminHandler(options.service, {
    onError: (error) => app.log.error({ err: error }, 'cache admin operation failed'),
    ...options.admin,
    token: options.adminToken,
    basePath,
  })
  const handOver = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    reply.hijack()
    handler(request.raw, reply.raw)
    done()
  }
  const unreachable = (): never => {
    throw new Error('the admin handler answers in onRequest')
  }
  // Every method: the handler answers 405 (with Allow) for the ones a route does not take.
  for (const url of [`${basePath}/cache`, `${basePath}/cache/*`]) {
    app.route({ method: app.supportedMethods, url, onRequest: handOver, handler: unreachable, exposeHeadRoute: false })
  }
}

/** A read that answered `null`: the task does not exist. */
function found<T>(view: T | null, taskId: string): T {
  if (view === null) throw new HttpError(404, 'E_TASK_NOT_FOUND', `task ${taskId} does not exist`, 'taskId')
  return view
}

/** The JSON body; the service validates its fields and names the one at fault. */
function bodyOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'E_INVALID_BODY', 'expected a JSON object body (content-type: application/json)', '(body)')
  }
  return body as Record<string, unknown>
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code
}

function describe(error: FastifyError | Error): { statusCode: number; code: string; message: string; field?: string } {
  if (error instanceof HttpError) {
    return { statusCode: error.statusCode, code: error.code, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) }
  }
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && Object.hasOwn(STATUS_OF_CODE, code)) {
    const field = (error as { field?: unknown }).field
    return { statusCode: STATUS_OF_CODE[code] as number, code, message: error.message, ...(typeof field === 'string' ? { field } : {}) }
  }
  // fastify's own client errors (a malformed JSON body, an unsupported content type, a body too large).
  const statusCode = (error as FastifyError).statusCode
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { statusCode, code: typeof code === 'string' ? code : 'E_BAD_REQUEST', message: error.message }
  }
  return { statusCode: 500, code: 'E_INTERNAL', message: error.message }
}

function publicMessage(statusCode: number): string {
  return statusCode === 503 ? 'a dependency of the service (Redis or the database) is unavailable: retry shortly' : 'the request failed'
}
