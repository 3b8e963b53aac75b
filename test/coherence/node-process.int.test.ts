import { fileURLToPath } from 'node:url'
import { connect } from 'node:net'
import { startFaultProxy, startNodeProcess, startRedis } from '@tiercache/testkit'
import { describe, expect, it } from 'vitest'

const echoNode = fileURLToPath(new URL('./fixtures/echo-node.ts', import.meta.url))

describe('startNodeProcess', () => {
  it('answers commands, streams events and reports errors with their code', async () => {
    await using node = await startNodeProcess(echoNode, { ECHO_TEST: 'yes' })
    expect(await node.call('echo', { a: [1, 'two'] })).toEqual({ a: [1, 'two'] })
    expect(await node.call('env', { name: 'ECHO_TEST' })).toBe('yes')
    await node.call('log')
    const event = node.waitForEvent<{ n: number }>('tick', (data) => data.n === 2)
    await node.call('emit', { name: 'tick', data: { n: 1 } })
    await node.call('emit', { name: 'tick', data: { n: 2 } })
    expect(await event).toEqual({ n: 2 })
    expect(node.events.filter((e) => e.name === 'tick').map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }])
    await expect(node.call('fail')).rejects.toMatchObject({ message: 'asked to fail', code: 'E_TEST' })
    await expect(node.call('nope')).rejects.toThrow(/unknown command/)
  })

  it('a killed child rejects its pending calls, and stop() ends a live one', async () => {
    const node = await startNodeProcess(echoNode)
    await node.kill()
    await expect(node.call('echo', 1)).rejects.toThrow(/exited/)
    const other = await startNodeProcess(echoNode)
    await other.stop()
    expect((await other.exited).code).toBe(0)
  })
})

describe('startFaultProxy', () => {
  async function ping(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' })
      socket.once('error', reject)
      socket.once('data', (chunk) => {
        socket.destroy()
        resolve(chunk.toString().trim())
      })
      socket.write('PING\r\n')
    })
  }

  it('forwards, holds bytes while black-holed, and cuts connections', async () => {
    await using server = await startRedis()
    await using proxy = await startFaultProxy({ target: { port: server.port } })
    expect(await ping(proxy.port)).toBe('+PONG')

    proxy.blackhole()
    let answered = false
    const held = ping(proxy.port).then((reply) => {
      answered = true
      return reply
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(answered).toBe(false)
    proxy.heal()
    expect(await held).toBe('+PONG')

    const socket = connect({ port: proxy.port, host: '127.0.0.1' })
    await new Promise((resolve) => socket.once('connect', resolve))
    const closed = new Promise((resolve) => socket.once('close', resolve))
    await expect.poll(() => proxy.connections).toBeGreaterThan(0)
    proxy.cut()
    await closed
    expect(proxy.connections).toBe(0)
  })
})
