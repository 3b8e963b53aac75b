import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/**
 * Multi-process test nodes: a test drives N child processes, each running its own SDK instance,
 * through a tiny RPC of JSON lines over the child's stdin/stdout.
 *
 * - Parent → child: `{"id":1,"cmd":"get","args":…}`.
 * - Child → parent: `{"tc":"reply","id":1,"ok":true,"value":…}` or
 *   `{"tc":"reply","id":1,"ok":false,"error":{"message","code"}}`, and events
 *   `{"tc":"event","name":"bus:applied","data":…}` whenever the child emits one.
 * - Any other stdout line (a stray console.log) is passed to the parent's stderr, not parsed.
 *
 * Children never outlive the test: a child exits when its stdin closes (the parent died or
 * stopped it), and the parent SIGKILLs every live child from an `exit` hook.
 */
export interface NodeProcess {
  readonly pid: number
  /** Sends a command; resolves the child's answer, rejects with its error. */
  call<T = unknown>(cmd: string, args?: unknown, options?: { timeoutMs?: number }): Promise<T>
  /** Registers a listener for a named event; returns a function that removes it. */
  on(name: string, listener: (data: unknown) => void): () => void
  /** Resolves the next event `name` whose data satisfies `predicate` (past events are not replayed: see `events`). */
  waitForEvent<T = unknown>(name: string, predicate?: (data: T) => boolean, options?: { timeoutMs?: number }): Promise<T>
  /** Every event received so far, in order (for checkers). */
  readonly events: readonly { readonly name: string; readonly data: unknown; readonly at: number }[]
  /** Resolves when the child exits (with its code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends a signal (SIGKILL by default) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Asks the child to shut down (`close` command, then stdin EOF), SIGKILL after `timeoutMs`. */
  stop(options?: { timeoutMs?: number }): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface StartNodeProcessOptions {
  /** Extra environment for the child (merged over the parent's). */
  env?: Readonly<Record<string, string>>
  /** How long to wait for the child's `ready` event. @default 20000 */
  readyTimeoutMs?: number
  /** Default timeout of `call()` and `waitForEvent()`. @default 30000 */
  timeoutMs?: number
  /** Working directory. @default the parent's */
  cwd?: string
}

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
  timer: NodeJS.Timeout
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  })
}

/** The tsconfig whose `paths` map `@tiercache/*` to the sources, so children need no build. */
const ROOT_TSCONFIG = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url))

/**
 * Starts `node --import tsx <scriptPath>` and waits until the script called `serveNodeProcess()`
 * (which emits `ready`).
 */
export async function startNodeProcess(scriptPath: string, env: Readonly<Record<string, string>> = {}, options: StartNodeProcessOptions = {}): Promise<NodeProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const child = spawn(process.execPath, ['--import', 'tsx', scriptPath], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: options.cwd,
    env: { TSX_TSCONFIG_PATH: ROOT_TSCONFIG, ...process.env, ...options.env, ...env },
  })
  live.add(child)
  installExitHook()
  child.stdin!.on('error', () => {})
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const pending = new Map<number, Pending>()
  const listeners = new Map<string, Set<(data: unknown) => void>>()
  const events: { name: string; data: unknown; at: number }[] = []
  let nextId = 1
  let exitedInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined

  void exited.then((info) => {
    exitedInfo = info
    const error = new Error(`node process ${child.pid} exited (code ${info.code}, signal ${info.signal})`)
    for (const request of pending.values()) {
      clearTimeout(request.timer)
      request.reject(error)
    }
    pending.clear()
    for (const listener of listeners.get('exit') ?? []) listener(info)
  })

  const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity })
  lines.on('line', (line) => {
    if (!line.startsWith('{"tc":')) {
      process.stderr.write(`[node ${child.pid}] ${line}\n`)
      return
    }
    let message: { tc: string; id?: number; ok?: boolean; value?: unknown; error?: { message: string; code?: string }; name?: string; data?: unknown }
    try {
      message = JSON.parse(line)
    } catch {
      process.stderr.write(`[node ${child.pid}] unparsable: ${line}\n`)
      return
    }
    if (message.tc === 'reply' && message.id !== undefined) {
      const request = pending.get(message.id)
      if (!request) return
      pending.delete(message.id)
      clearTimeout(request.timer)
      if (message.ok) request.resolve(message.value)
      else request.reject(Object.assign(new Error(message.error?.message ?? 'error'), { code: message.error?.code }))
    } else if (message.tc === 'event' && message.name !== undefined) {
      events.push({ name: message.name, data: message.data, at: Date.now() })
      for (const listener of listeners.get(message.name) ?? []) listener(message.data)
    }
  })

  const on = (name: string, listener: (data: unknown) => void) => {
    let set = listeners.get(name)
    if (!set) listeners.set(name, (set = new Set()))
    set.add(listener)
    return () => void set.delete(listener)
  }

  const waitForEvent = <T>(name: string, predicate: (data: T) => boolean = () => true, opts: { timeoutMs?: number } = {}) =>
    new Promise<T>((resolve, reject) => {
      const limit = opts.timeoutMs ?? timeoutMs
      const timer = setTimeout(() => {
        off()
        offExit()
        reject(new Error(`node process ${child.pid}: no "${name}" event matching within ${limit} ms`))
      }, limit)
      const off = on(name, (data) => {
        if (!predicate(data as T)) return
        clearTimeout(timer)
        off()
        offExit()
        resolve(data as T)
      })
      const offExit = name === 'exit' ? () => {} : on('exit', (info) => {
        clearTimeout(timer)
        off()
        offExit()
        reject(new Error(`node process ${child.pid} exited while waiting for "${name}": ${JSON.stringify(info)}`))
      })
    })

  const call = <T>(cmd: string, args?: unknown, opts: { timeoutMs?: number } = {}) =>
    new Promise<T>((resolve, reject) => {
      if (exitedInfo) {
        reject(new Error(`node process ${child.pid} has exited`))
        return
      }
      const id = nextId++
      const limit = opts.timeoutMs ?? timeoutMs
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`node process ${child.pid}: "${cmd}" did not answer within ${limit} ms`))
      }, limit)
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer })
      child.stdin!.write(`${JSON.stringify({ id, cmd, args })}\n`)
    })

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (exitedInfo) return
    child.kill(signal)
    await exited
  }

  const stop = async ({ timeoutMs: limit = 5_000 }: { timeoutMs?: number } = {}) => {
    if (exitedInfo) return
    const timer = setTimeout(() => child.kill('SIGKILL'), limit)
    try {
      await call('close', undefined, { timeoutMs: limit }).catch(() => {})
      child.stdin!.end()
      await exited
    } finally {
      clearTimeout(timer)
    }
  }

  const node: NodeProcess = {
    get pid() {
      return child.pid ?? -1
    },
    call,
    on,
    waitForEvent,
    events,
    exited,
    kill,
    stop,
    [Symbol.asyncDispose]: () => stop(),
  }
  try {
    await waitForEvent('ready', undefined, { timeoutMs: options.readyTimeoutMs ?? 20_000 })
  } catch (error) {
    await kill()
    throw error
  }
  return node
}

/** What a child script registers: command name → handler. `close` is called by `stop()`. */
export type NodeProcessHandlers = Readonly<Record<string, (args: never) => unknown>>

export interface NodeProcessServer {
  /** Streams an event to the parent. */
  emit(name: string, data?: unknown): void
}

/**
 * The child side: answers the parent's commands with `handlers` and emits `ready`. The process
 * exits when stdin closes (the parent is gone), after the `close` handler if there is one.
 */
export function serveNodeProcess(handlers: NodeProcessHandlers): NodeProcessServer {
  const write = (message: object) => {
    process.stdout.write(`${JSON.stringify({ tc: (message as { tc: string }).tc, ...message })}\n`)
  }
  const emit = (name: string, data?: unknown) => write({ tc: 'event', name, data })
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  let closed: Promise<unknown> | undefined
  const close = () => (closed ??= Promise.resolve().then(() => (handlers.close as (() => unknown) | undefined)?.()))
  const shutdown = () => {
    // A close handler stuck on a paused server must not keep an orphan alive.
    setTimeout(() => process.exit(0), 3_000).unref()
    void close().finally(() => process.exit(0))
  }
  lines.on('line', (line) => {
    let request: { id: number; cmd: string; args: unknown }
    try {
      request = JSON.parse(line)
    } catch {
      return
    }
    const handler = handlers[request.cmd] as ((args: unknown) => unknown) | undefined
    if (request.cmd === 'close') {
      close().then(
        () => write({ tc: 'reply', id: request.id, ok: true }),
        (error: unknown) => write({ tc: 'reply', id: request.id, ok: false, error: describe(error) }),
      )
      return
    }
    if (!handler) {
      write({ tc: 'reply', id: request.id, ok: false, error: { message: `unknown command "${request.cmd}"` } })
      return
    }
    Promise.resolve()
      .then(() => handler(request.args))
      .then(
        (value) => write({ tc: 'reply', id: request.id, ok: true, value: value === undefined ? null : value }),
        (error: unknown) => write({ tc: 'reply', id: request.id, ok: false, error: describe(error) }),
      )
  })
  lines.on('close', shutdown)
  queueMicrotask(() => emit('ready', { pid: process.pid }))
  return { emit }
}

function describe(error: unknown): { message: string; code?: string } {
  if (error instanceof Error) return { message: error.message, code: (error as { code?: string }).code }
  return { message: String(error) }
}
