#!/usr/bin/env node
// The packages as a user gets them: packs every published package (after `pnpm build`), installs
// the tarballs with npm into a scratch project outside the workspace, runs consumer.mjs there
// against a real redis-server, and compiles consumer.ts with strict TypeScript against the
// installed declarations. Exits non-zero on the first failure. `KEEP=1` keeps the scratch project.
//
// better-sqlite3 is installed from the copy the workspace already compiled (npm links a folder),
// so that the install downloads and compiles nothing native.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '../..')
const started = performance.now()
const step = (what) => console.log(`[pack-install] ${what} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
const run = (command, args, options = {}) => execFileSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...options })

const published = readdirSync(join(root, 'packages'))
  .map((name) => join(root, 'packages', name))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => manifest.private !== true)
for (const { dir, manifest } of published) {
  if (!existsSync(join(dir, 'dist'))) throw new Error(`${manifest.name} has no dist/: run \`pnpm build\` first`)
}

/** The version the workspace installed for a dependency of `pkgDir`: the consumer gets the same. */
const installedVersion = (pkgDir, name) => JSON.parse(readFileSync(join(pkgDir, 'node_modules', name, 'package.json'), 'utf8')).version

const scratch = mkdtempSync(join(tmpdir(), 'tiercache-pack-install-'))
let redis
try {
  const tarballs = join(scratch, 'tarballs')
  mkdirSync(tarballs)
  const dependencies = {}
  for (const { dir, manifest } of published) {
    // pnpm pack turns workspace: ranges into the versions they point at, as a publish would.
    const out = run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: dir }).trim().split('\n').pop()
    dependencies[manifest.name] = `file:${join('tarballs', out.split('/').pop())}`
  }
  step(`packed ${published.length} packages`)

  const task = join(root, 'packages', 'task')
  const redisPkg = join(root, 'packages', 'redis')
  const prometheus = join(root, 'packages', 'prometheus')
  Object.assign(dependencies, {
    'better-sqlite3': `file:${realpathSync(join(task, 'node_modules', 'better-sqlite3'))}`,
    ioredis: installedVersion(redisPkg, 'ioredis'),
    pg: installedVersion(task, 'pg'),
    'prom-client': installedVersion(prometheus, 'prom-client'),
    zod: installedVersion(task, 'zod'),
  })
  const devDependencies = {
    '@types/node': installedVersion(root, '@types/node'),
    '@types/pg': installedVersion(task, '@types/pg'),
    '@types/better-sqlite3': installedVersion(task, '@types/better-sqlite3'),
  }
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'tiercache-consumer', private: true, type: 'module', dependencies, devDependencies }, null, 2))
  for (const file of ['consumer.mjs', 'consumer.ts']) copyFileSync(join(here, file), join(scratch, file))
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'] },
      files: ['consumer.ts'],
    }),
  )
  // No install scripts: the native modules come prebuilt (lz4-napi, msgpackr's optional packages)
  // or already compiled (better-sqlite3, linked).
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: scratch, stdio: ['ignore', 'inherit', 'inherit'] })
  step('installed the tarballs with npm')

  const { startRedis } = await import(pathToFileURL(join(root, 'packages', 'testkit', 'dist', 'index.js')).href)
  redis = await startRedis()
  run(process.execPath, ['consumer.mjs'], { cwd: scratch, env: { ...process.env, REDIS_URL: redis.url }, stdio: ['ignore', 'inherit', 'inherit'] })
  step('consumer.mjs ran against real Redis')

  // The workspace's compiler, over the scratch project's node_modules only.
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(scratch, 'tsconfig.json')], { cwd: scratch, stdio: ['ignore', 'inherit', 'inherit'] })
  step('consumer.ts compiled under strict TypeScript')
} finally {
  await redis?.stop()
  if (process.env.KEEP) console.log(`[pack-install] kept ${scratch}`)
  else rmSync(scratch, { recursive: true, force: true })
}
