import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { sendCommand, startRedis, startRedisCluster, type RedisServer } from '@tiercache/testkit'

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  for (let i = 0; i < timeoutMs / 10; i++) {
    if (await predicate()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('startRedis', () => {
  const started: RedisServer[] = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map((server) => server.stop()))
  })

  it('answers on a loopback port and is gone after stop()', async () => {
    const server = await startRedis()
    started.push(server)
    expect(await server.command('SET', 'k', 'v')).toBe('OK')
    expect(await server.command('GET', 'k')).toBe('v')
    const pid = server.pid
    await server.stop()
    expect(alive(pid)).toBe(false)
    await expect(sendCommand(server.port, ['PING'], { timeoutMs: 300 })).rejects.toThrow()
  })

  it('pause() stops answering and resume() brings it back', async () => {
    const server = await startRedis()
    started.push(server)
    server.pause()
    await expect(server.command('PING').then(() => 'answered', () => 'failed')).resolves.toBe('failed')
    server.resume()
    expect(await server.command('PING')).toBe('PONG')
  })

  it('kill() crashes it and restart() brings up an empty server on the same port', async () => {
    const server = await startRedis()
    started.push(server)
    const { port, pid } = server
    await server.command('SET', 'k', 'v')
    await server.kill()
    expect(alive(pid)).toBe(false)
    await server.restart()
    expect(server.port).toBe(port)
    expect(server.pid).not.toBe(pid)
    expect(await server.command('GET', 'k')).toBe('')
  })

  it('takes the server and its directory down when the owning process is SIGKILLed', async () => {
    const child = fileURLToPath(new URL('./fixtures/start-and-wait.ts', import.meta.url))
    const proc = spawn(process.execPath, ['--import', 'tsx', child], { stdio: ['ignore', 'pipe', 'inherit'] })
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      proc.stdout.setEncoding('utf8')
      proc.stdout.on('data', (chunk: string) => {
        out += chunk
        if (out.includes('\n')) resolve(out.split('\n')[0]!)
      })
      proc.once('exit', (code) => reject(new Error(`fixture exited early with ${code}`)))
    })
    const { pid, port, dir } = JSON.parse(line) as { pid: number; port: number; dir: string }
    expect(alive(pid)).toBe(true)
    expect(await sendCommand(port, ['PING'])).toBe('PONG')
    proc.kill('SIGKILL')
    await until(() => !alive(pid), 'the orphaned redis-server to die')
    await until(() => !existsSync(dir), 'its directory to be removed')
  })
})

describe('startRedisCluster', () => {
  it('forms a 3-master cluster covering every slot', async () => {
    await using cluster = await startRedisCluster()
    expect(cluster.nodes).toHaveLength(3)
    for (const node of cluster.nodes) {
      const info = await node.command('CLUSTER', 'INFO')
      expect(info).toContain('cluster_state:ok')
      expect(info).toContain('cluster_slots_assigned:16384')
      expect(info).toContain('cluster_known_nodes:3')
    }
  })
})

describe('startRedisCluster with replicas', () => {
  it('forms 3 masters with a replica each, and a killed master is replaced by its replica', async () => {
    await using cluster = await startRedisCluster({ replicasPerMaster: 1 })
    expect(cluster.nodes).toHaveLength(6)
    expect(cluster.masters).toHaveLength(3)
    for (const [i, replica] of cluster.replicas.entries()) {
      const role = (await replica.command('ROLE')).split('\n')
      expect(role[0]).toBe('slave')
      expect(Number(role[2])).toBe(cluster.masters[i]!.port)
    }
    const slot = 0
    const master = await cluster.ownerOf(slot)
    expect(master).toBe(cluster.masters[0])
    await master.kill()
    await until(async () => (await cluster.ownerOf(slot).catch(() => master)) !== master, 'the replica to take over slot 0', 30_000)
    expect(await cluster.ownerOf(slot)).toBe(cluster.replicas[0])
    expect((await cluster.replicas[0]!.command('ROLE')).split('\n')[0]).toBe('master')
  })
})
