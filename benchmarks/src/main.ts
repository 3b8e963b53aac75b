// The benchmark suite's entry point: `pnpm bench [--quick] [--only <id>]`.
// Until the scenarios land it is a smoke run: start Redis, write and read a value, say what it did.
import { Redis } from 'ioredis'
import { startRedis } from '@tiercache/testkit'

const server = await startRedis()
try {
  const client = new Redis(server.port, '127.0.0.1', { lazyConnect: true })
  await client.connect()
  const value = JSON.stringify({ taskId: 'task-000001', status: 'running', progress: 0.42 })
  await client.set('bench:smoke', value, 'PX', 60_000)
  const read = await client.get('bench:smoke')
  console.log(`redis-server on 127.0.0.1:${server.port}: wrote ${value.length} bytes, read back ${read === value ? 'the same value' : 'A DIFFERENT VALUE'}`)
  client.disconnect()
  if (read !== value) process.exitCode = 1
} finally {
  await server.stop()
}
