// Entry point of a child process started by `runInChild` (child.ts): receives one job over IPC,
// runs the named ChildEntry, sends its rows back, and waits to be killed.
import { isAbsolute } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { ChildContext, ChildEntry, Fixtures, RedisEndpoint, Row } from './scenario.js'

export interface ChildJob {
  type: 'run'
  module: string
  exportName: string
  args: unknown
  ctx: { quick: boolean; redis: RedisEndpoint; fixtures: Fixtures; timeMs: number; keyPrefix: string }
}

export type ChildMessage = { type: 'rows'; rows: Row[] } | { type: 'error'; message: string } | { type: 'log'; message: string }

const send = (message: ChildMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })

async function runJob(job: ChildJob): Promise<void> {
  const url = isAbsolute(job.module) ? pathToFileURL(job.module).href : job.module
  const mod = (await import(url)) as Record<string, unknown>
  const entry = mod[job.exportName]
  if (typeof entry !== 'function') throw new Error(`${job.module} does not export a function named ${job.exportName}`)
  const ctx: ChildContext = {
    ...job.ctx,
    log: (message) => void send({ type: 'log', message }),
  }
  const rows = await (entry as ChildEntry)(job.args, ctx)
  await send({ type: 'rows', rows })
}

// A peer's background reconnect loop must not turn into a crash that loses the rows already sent.
process.on('unhandledRejection', (reason) => {
  void send({ type: 'log', message: `unhandled rejection in child: ${String((reason as Error)?.message ?? reason)}` })
})
process.on('uncaughtException', (error) => {
  void send({ type: 'log', message: `uncaught exception in child: ${error.message}` })
})

// The harness went away (finished, crashed or interrupted): a child must not outlive it.
process.once('disconnect', () => process.exit(0))

process.once('message', (job: ChildJob) => {
  runJob(job).catch(async (error: unknown) => {
    await send({ type: 'error', message: (error as Error)?.stack ?? String(error) })
  })
})
