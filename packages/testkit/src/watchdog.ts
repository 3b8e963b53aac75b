import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

/**
 * A process started behind a tiny shell watchdog that holds a pipe from this process: when this
 * process ends in any way (test failure, Ctrl-C, SIGKILL of the runner) the pipe closes and the
 * watchdog kills the child and removes its directory. An `exit` hook does the same synchronously
 * for orderly exits, so no server and no temp dir outlives the test run.
 */
export interface WatchedProcess {
  readonly pid: number
  readonly dir: string
  /** SIGKILL the process and remove its directory, synchronously. Idempotent. */
  destroy(): void
}

// $1: directory to remove, rest: the command. Prints the child's pid, then waits for stdin EOF.
const WATCHDOG = [
  'dir="$1"; shift',
  '"$@" & pid=$!',
  'echo "$pid"',
  'trap \'kill -9 "$pid" 2>/dev/null; rm -rf "$dir"\' EXIT',
  "trap 'exit 0' TERM INT HUP",
  'read -r _ || true',
].join('\n')

const live = new Set<WatchedProcess>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const watched of live) watched.destroy()
  })
}

/** Starts `command` (binary first) behind a watchdog that owns `dir`. */
export async function spawnWatched(dir: string, command: readonly string[]): Promise<WatchedProcess> {
  const watchdog: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'tiercache-watchdog', dir, ...command], {
    stdio: ['pipe', 'pipe', 'ignore'],
  })
  watchdog.on('error', () => {})
  const pid = await new Promise<number>((resolve, reject) => {
    let out = ''
    watchdog.stdout?.setEncoding('utf8')
    watchdog.stdout?.on('data', (chunk: string) => {
      out += chunk
      const line = out.split('\n')[0]
      if (out.includes('\n') && line) resolve(Number(line))
    })
    watchdog.once('exit', () => reject(new Error(`watchdog exited before starting ${command[0]}`)))
  })
  watchdog.stdout?.removeAllListeners('data')
  watchdog.stdout?.resume()
  // The watchdog must not keep the event loop alive: the tests' lifetime decides, not the server's.
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  ;(watchdog.stdout as unknown as { unref?: () => void } | null)?.unref?.()
  const watched: WatchedProcess = {
    pid,
    dir,
    destroy() {
      live.delete(watched)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
      watchdog.stdin?.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  live.add(watched)
  installExitHook()
  return watched
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
