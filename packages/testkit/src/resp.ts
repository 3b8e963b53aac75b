import { connect } from 'node:net'

/**
 * A one-shot RESP2 command over a fresh socket. The testkit needs a handful of admin commands
 * (PING, CLUSTER …, INFO) before any client library is configured, and must not depend on one.
 */
export function sendCommand(
  port: number,
  args: readonly (string | number)[],
  { host = '127.0.0.1', timeoutMs = 2000 }: { host?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    let buffer = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis ${host}:${port} did not answer ${String(args[0])} within ${timeoutMs} ms`))
    }, timeoutMs)
    const finish = (error: Error | null, value?: string) => {
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? '')
    }
    socket.on('error', (error) => finish(error))
    socket.on('connect', () => {
      let payload = `*${args.length}\r\n`
      for (const arg of args) {
        const text = String(arg)
        payload += `$${Buffer.byteLength(text)}\r\n${text}\r\n`
      }
      socket.write(payload)
    })
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      const parsed = parseAt(buffer, 0)
      if (parsed === undefined) return
      if (parsed.error) finish(new Error(parsed.error))
      else finish(null, parsed.value)
    })
  })
}

type Parsed = { value: string; error?: string; end: number }

/**
 * Parses one complete reply starting at `offset`; undefined while more bytes are needed. Arrays
 * come back as their elements joined by newlines, which is all the testkit's admin commands need.
 */
function parseAt(buffer: Buffer, offset: number): Parsed | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset)
  if (lineEnd < 0) return undefined
  const head = buffer.toString('utf8', offset + 1, lineEnd)
  const next = lineEnd + 2
  switch (String.fromCharCode(buffer[offset]!)) {
    case '+':
    case ':':
      return { value: head, end: next }
    case '-':
      return { value: '', error: head, end: next }
    case '$': {
      const length = Number(head)
      if (length < 0) return { value: '', end: next }
      if (buffer.length < next + length + 2) return undefined
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 }
    }
    case '*': {
      const count = Number(head)
      const items: string[] = []
      let cursor = next
      for (let i = 0; i < count; i++) {
        const item = parseAt(buffer, cursor)
        if (!item) return undefined
        items.push(item.value)
        cursor = item.end
      }
      return { value: items.join('\n'), end: cursor }
    }
    default:
      return { value: '', error: `unexpected reply: ${head.slice(0, 40)}`, end: next }
  }
}
