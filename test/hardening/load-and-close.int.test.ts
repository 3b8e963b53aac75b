// A long mixed load leaks nothing, and close() in the middle of a load lets the process end on
// its own: run in a child process of its own (fixtures/load-then-close.ts), which never calls
// process.exit, on the run's shared Redis.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('./fixtures/load-then-close.ts', import.meta.url))
const rootTsconfig = fileURLToPath(new URL('../../tsconfig.json', import.meta.url))
/** Not a speed limit: how long a child that never ends is given before the test calls it hung. */
const HUNG_AFTER_MS = 240_000

interface Ran {
  phase: 'ran'
  heapAtThird: number
  heapAtEnd: number
  recoveryQueueDepth: number
  writeQueueDepth: number
  l1Entries: number
}
interface Closed {
  phase: 'closed'
  errors: Record<string, number>
}

describe('a service process under a long load', () => {
  it('holds its heap over 300,000 mixed operations, and ends on its own after close() under load', async () => {
    const { url, namespace } = sharedRedis('load')
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
      env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig, TC_REDIS_URL: url, TC_NAMESPACE: namespace, TC_OPS: '300000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const hung = setTimeout(() => child.kill('SIGKILL'), HUNG_AFTER_MS)
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    clearTimeout(hung)

    // Ended by itself (no signal, code 0): close() left nothing that keeps the event loop alive.
    expect(exit, out).toEqual({ code: 0, signal: null })
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as Ran | Closed)
    const ran = lines.find((l): l is Ran => l.phase === 'ran')!
    const closed = lines.find((l): l is Closed => l.phase === 'closed')!
    // The last 200,000 operations added no more than a fifth to the live heap of the first 100,000
    // (a leak of 100 bytes per operation would add 20 MB to a heap of a few).
    expect(ran.heapAtEnd).toBeLessThan(ran.heapAtThird * 1.2)
    expect(ran.l1Entries).toBeLessThanOrEqual(2_000)
    expect(ran.recoveryQueueDepth).toBe(0)
    expect(ran.writeQueueDepth).toBe(0)
    // Calls made after close() fail with the closed error, and nothing else failed.
    expect(Object.keys(closed.errors)).toEqual(['E_CLOSED'])
  })
})
