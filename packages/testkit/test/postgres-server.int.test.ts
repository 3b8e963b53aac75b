import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { postgresBinDir, startPostgres, TestkitError, type PostgresServer } from '@tiercache/testkit'

/** One statement through psql over TCP as the superuser (trust: works as root too); rows as `a|b` lines. */
function sql(port: number, database: string, statement: string): Promise<string> {
  const args = ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-c', statement]
  return new Promise((resolve, reject) => {
    execFile(join(postgresBinDir(), 'psql'), args, { encoding: 'utf8', env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`psql: ${stderr.trim() || error.message}`))
      else resolve(stdout.trim())
    })
  })
}

/** The error a TCP connection to the port ends with ('' when it connects). */
function connectError(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve('')
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  for (let i = 0; i < timeoutMs / 20; i++) {
    if (await predicate()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A child process that starts a server, prints where it is, then runs `then`. */
async function startInChild(then: string): Promise<{ proc: ChildProcess; port: number; dir: string }> {
  const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url))
  const script = [
    `const { startPostgres } = await import(${JSON.stringify(entry)})`,
    'const server = await startPostgres()',
    'process.stdout.write(JSON.stringify({ port: server.port, dir: server.dir }) + "\\n")',
    then,
  ].join('\n')
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    proc.stdout.setEncoding('utf8')
    proc.stdout.on('data', (chunk: string) => {
      out += chunk
      if (out.includes('\n')) resolve(out.split('\n')[0]!)
    })
    proc.once('exit', (code) => reject(new Error(`child exited early with ${code}`)))
  })
  const { port, dir } = JSON.parse(line) as { port: number; dir: string }
  return { proc, port, dir }
}

describe('startPostgres', () => {
  let server: PostgresServer
  const started: PostgresServer[] = []

  beforeAll(async () => {
    server = await startPostgres()
  })
  afterAll(() => server.stop())
  afterEach(async () => {
    await Promise.all(started.splice(0).map((one) => one.stop()))
  })

  it('answers SQL on a loopback port, with durability off', async () => {
    expect(server.host).toBe('127.0.0.1')
    expect(server.user).toBe('postgres')
    expect(server.database).toBe('postgres')
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`)
    expect(await sql(server.port, 'postgres', 'SELECT 1')).toBe('1')
    expect(await sql(server.port, 'postgres', 'SHOW fsync')).toBe('off')
    expect(await sql(server.port, 'postgres', 'SHOW listen_addresses')).toBe('127.0.0.1')
    expect(await sql(server.port, 'postgres', 'SELECT current_user')).toBe('postgres')
    expect(await sql(server.port, 'postgres', 'SHOW server_encoding')).toBe('UTF8')
  })

  it('createDatabase() makes a database one can connect to, under a fresh name when none is given', async () => {
    const named = await server.createDatabase('orders_test')
    expect(named).toEqual({ name: 'orders_test', url: `postgres://postgres@127.0.0.1:${server.port}/orders_test` })
    expect(await sql(server.port, 'orders_test', 'SELECT current_database()')).toBe('orders_test')
    await sql(server.port, 'orders_test', 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)')
    expect(await sql(server.port, 'orders_test', 'SELECT count(*) FROM t')).toBe('2')

    const first = await server.createDatabase()
    const second = await server.createDatabase()
    expect(first.name).not.toBe(second.name)
    expect(first.name).toMatch(/^[a-z_][a-z0-9_]{0,62}$/)
    expect(await sql(server.port, second.name, 'SELECT current_database()')).toBe(second.name)
    await expect(server.createDatabase('orders_test')).rejects.toThrow(/already exists/)
  })

  it('createDatabase() with a template copies that database, rows included', async () => {
    const copy = await server.createDatabase('orders_copy', { template: 'orders_test' })
    expect(await sql(server.port, copy.name, 'SELECT count(*) FROM t')).toBe('2')
    await expect(server.createDatabase(undefined, { template: 'Bad-Name' })).rejects.toThrow(/template: "Bad-Name" is not a valid database name/)
  })

  it('rejects an invalid database name with a clear error, before touching the server', async () => {
    for (const name of ['Orders', '1st', 'a-b', 'x"; DROP DATABASE postgres; --', '', 'a'.repeat(64)]) {
      await expect(server.createDatabase(name)).rejects.toThrow(RangeError)
    }
    await expect(server.createDatabase('Orders')).rejects.toThrow(/createDatabase: "Orders" is not a valid database name/)
    await expect(startPostgres({ database: 'no-dashes' })).rejects.toThrow(/startPostgres: "no-dashes" is not a valid database name/)
    expect(await sql(server.port, 'postgres', 'SELECT 1')).toBe('1')
  })

  it('creates options.database and puts it in url', async () => {
    const own = await startPostgres({ database: 'app' })
    started.push(own)
    expect(own.database).toBe('app')
    expect(own.url).toBe(`postgres://postgres@127.0.0.1:${own.port}/app`)
    expect(await sql(own.port, 'app', 'SELECT current_database()')).toBe('app')
  })

  it('fails with E_POSTGRES_START and the server log when its port is taken', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const { port } = blocker.address() as AddressInfo
    try {
      const error = await startPostgres({ port }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(TestkitError)
      expect((error as TestkitError).code).toBe('E_POSTGRES_START')
      expect((error as TestkitError).message).toMatch(new RegExp(`PostgreSQL on port ${port} exited during start-up\\n[^]*postgres log:[^]*Address already in use`))
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })

  it('stop() shuts it down, frees the port and removes its directory; stopping twice is fine', async () => {
    const own = await startPostgres()
    started.push(own)
    expect(existsSync(join(own.dir, 'data', 'PG_VERSION'))).toBe(true)
    expect(await connectError(own.port)).toBe('')
    await own.stop()
    expect(await connectError(own.port)).toBe('ECONNREFUSED')
    expect(existsSync(own.dir)).toBe(false)
    await expect(own.stop()).resolves.toBeUndefined()
    await expect(Promise.all([own.stop(), own.stop()])).resolves.toEqual([undefined, undefined])
    const error = await own.createDatabase('late').catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(TestkitError)
    expect((error as TestkitError).code).toBe('E_POSTGRES_STOPPED')
  })

  it('takes the server and its directory down when the owning process is SIGKILLed', async () => {
    const { proc, port, dir } = await startInChild('setInterval(() => {}, 1000)')
    expect(await sql(port, 'postgres', 'SELECT 1')).toBe('1')
    // A killed postmaster leaves its System V segment ("key shmid" on line 7 of postmaster.pid): removed below.
    const shmid = readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[6]?.trim().split(/\s+/)[1]
    proc.kill('SIGKILL')
    await until(async () => (await connectError(port)) === 'ECONNREFUSED', 'the orphaned postgres to stop listening')
    await until(() => !existsSync(dir), 'its directory to be removed')
    if (shmid && /^\d+$/.test(shmid)) spawnSync('ipcrm', ['-m', shmid], { stdio: 'ignore' })
  })

  it('shuts the server down when the owning process exits without stop()', async () => {
    const { proc, port, dir } = await startInChild('process.stdin.once("data", () => process.exit(0)); process.stdin.resume()')
    expect(await sql(port, 'postgres', 'SELECT 1')).toBe('1')
    const exitCode = new Promise((resolve) => proc.once('exit', resolve))
    proc.stdin?.write('exit\n')
    expect(await exitCode).toBe(0)
    expect(await connectError(port)).toBe('ECONNREFUSED')
    await until(() => !existsSync(dir), 'its directory to be removed')
  })
})

describe('postgresBinDir', () => {
  const saved = process.env.PG_BIN
  afterEach(() => {
    if (saved === undefined) delete process.env.PG_BIN
    else process.env.PG_BIN = saved
  })

  it('finds a directory with postgres, initdb and psql', () => {
    const dir = postgresBinDir()
    for (const tool of ['postgres', 'initdb', 'psql']) expect(existsSync(join(dir, tool))).toBe(true)
  })

  it('honours PG_BIN and says how to install PostgreSQL when it points at the wrong place', () => {
    const found = postgresBinDir()
    process.env.PG_BIN = found
    expect(postgresBinDir()).toBe(found)
    process.env.PG_BIN = '/nonexistent/pg/bin'
    const error = (() => {
      try {
        postgresBinDir()
      } catch (caught) {
        return caught
      }
      return undefined
    })()
    expect(error).toBeInstanceOf(TestkitError)
    expect((error as TestkitError).code).toBe('E_POSTGRES_BINARY')
    expect((error as TestkitError).message).toMatch(/PG_BIN=\/nonexistent\/pg\/bin .*apt-get install -y postgresql/)
  })
})
