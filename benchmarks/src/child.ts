// runInChild: each peer and each library's candidates measure in their own Node process, so one
// library's client or codec never shares a heap or a JIT profile with another's (a Redis client
// loaded in-process can slow msgpackr by 3×). Every child is killed when the scenario ends.
import { fork, type ChildProcess } from 'node:child_process'
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildJob, ChildMessage } from './child-main.js'
import type { ChildOptions, Row } from './scenario.js'

const SRC = fileURLToPath(new URL('.', import.meta.url))
const CHILD_MAIN = fileURLToPath(new URL('./child-main.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')

export interface ChildPool {
  run(module: string | URL, exportName: string, args: unknown, ctx: ChildJob['ctx'], options: ChildOptions, log: (message: string) => void): Promise<Row[]>
  /** Kills every child still alive. */
  killAll(): void
}

export function modulePath(module: string | URL): string {
  if (module instanceof URL) return fileURLToPath(module)
  if (module.startsWith('file:')) return fileURLToPath(module)
  return isAbsolute(module) ? module : resolve(SRC, module)
}

export function childPool(): ChildPool {
  const live = new Set<ChildProcess>()
  const kill = (child: ChildProcess) => {
    live.delete(child)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  return {
    run(module, exportName, args, ctx, options, log) {
      const path = modulePath(module)
      const timeoutMs = options.timeoutMs ?? 120_000
      const child = fork(CHILD_MAIN, [], {
        execArgv: ['--import', TSX, ...(options.execArgv ?? [])],
        env: { ...process.env, ...options.env },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      })
      live.add(child)
      let stderr = ''
      child.stderr?.setEncoding('utf8')
      child.stderr?.on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-4000)
      })
      const label = `${path.slice(SRC.length)}#${exportName}`
      return new Promise<Row[]>((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          finish(new Error(`${label} exceeded its ${timeoutMs} ms deadline and was killed`))
        }, timeoutMs)
        const finish = (error: Error | undefined, rows?: Row[]) => {
          clearTimeout(timer)
          kill(child)
          if (error) reject(error)
          else resolvePromise(rows ?? [])
        }
        child.on('message', (message: ChildMessage) => {
          if (message.type === 'log') log(message.message)
          else if (message.type === 'rows') finish(undefined, message.rows)
          else finish(new Error(`${label} failed: ${message.message}`))
        })
        child.on('error', (error) => finish(error))
        child.on('exit', (code, signal) => {
          finish(new Error(`${label} exited (${signal ?? `code ${code}`}) without rows${stderr ? `:\n${stderr.trim()}` : ''}`))
        })
        const job: ChildJob = { type: 'run', module: path, exportName, args, ctx }
        child.send(job)
      })
    },
    killAll() {
      for (const child of [...live]) kill(child)
    },
  }
}
