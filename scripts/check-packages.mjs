#!/usr/bin/env node
// Checks every published package (packages/*/package.json without "private": true) the way a
// consumer receives it: packs it with pnpm (workspace: and catalog: ranges resolved, `files`
// applied), then lints the tarball.
//   - publint, strict: exports, types, files and fields of package.json against what is packed;
//   - attw (Are the Types Wrong?), profile esm-only: every entry point's types resolve under
//     node16 (from ESM) and bundler. The packages are ESM only, so CommonJS and node10
//     resolutions are not judged;
//   - the tarball's contents: README.md and CHANGELOG.md are in it, build info and tests are not.
// Needs a build first (`pnpm run build`). Exits 1 on any problem.
// Usage: node scripts/check-packages.mjs [package-dir...]   (defaults to every published package)
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..')
const started = performance.now()

const REQUIRED_FILES = ['package.json', 'README.md', 'CHANGELOG.md']
const FORBIDDEN_FILES = [
  { pattern: /\.tsbuildinfo$/, why: 'TypeScript build info' },
  { pattern: /(^|\/)(test|tests|__tests__)\//, why: 'a test folder' },
  { pattern: /\.(test|spec)\.[cm]?[jt]sx?$/, why: 'a test file' },
]

const dirs =
  process.argv.length > 2
    ? process.argv.slice(2).map((dir) => resolve(dir))
    : readdirSync(join(root, 'packages'), { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && existsSync(join(root, 'packages', entry.name, 'package.json')))
        .map((entry) => join(root, 'packages', entry.name))
const packages = dirs
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => pkg.private !== true)

if (packages.length === 0) {
  console.error('check-packages: no published package found')
  process.exit(1)
}

const unbuilt = packages.filter(({ dir }) => !existsSync(join(dir, 'dist')))
if (unbuilt.length > 0) {
  console.error(`check-packages: no dist/ in ${unbuilt.map(({ pkg }) => pkg.name).join(', ')}: run \`pnpm run build\` first`)
  process.exit(1)
}

const out = mkdtempSync(join(tmpdir(), 'check-packages-'))
const shell = process.platform === 'win32' // pnpm is a .cmd there
const attwDir = join(createRequire(join(root, 'package.json')).resolve('@arethetypeswrong/cli/package.json'), '..')
const attwBin = join(attwDir, JSON.parse(readFileSync(join(attwDir, 'package.json'), 'utf8')).bin.attw)

async function check({ dir, pkg }) {
  const problems = []
  const dest = join(out, pkg.name.replace(/[@/]/g, '_'))

  // 1. Pack, as `pnpm publish` would.
  const { stdout } = await run('pnpm', ['pack', '--json', '--pack-destination', dest], { cwd: dir, shell, maxBuffer: 16 << 20 })
  const packed = JSON.parse(stdout)
  const tarball = packed.filename
  const files = packed.files.map((file) => file.path)

  // 2. Contents.
  for (const required of REQUIRED_FILES) {
    if (!files.includes(required)) problems.push(`contents: ${required} is not packed`)
  }
  for (const file of files) {
    const forbidden = FORBIDDEN_FILES.find(({ pattern }) => pattern.test(file))
    if (forbidden) problems.push(`contents: ${file} is packed (${forbidden.why})`)
  }

  // 3. publint on the tarball, warnings as errors; suggestions are reported too.
  const data = await readFile(tarball)
  const { messages, pkg: packedPkg } = await publint({
    pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) },
    strict: true,
  })
  for (const message of messages) {
    problems.push(`publint ${message.type}: ${formatMessage(message, packedPkg, { color: false })}`)
  }

  // 4. attw on the same tarball.
  let attwOut
  let attwFailed = false
  try {
    ;({ stdout: attwOut } = await run(process.execPath, [attwBin, tarball, '--profile', 'esm-only', '--format', 'json'], {
      cwd: root,
      maxBuffer: 64 << 20,
    }))
  } catch (error) {
    if (typeof error.stdout !== 'string' || error.stdout === '') {
      problems.push(`attw: ${String(error.stderr || error.message).trim()}`)
      return { pkg, files, problems }
    }
    attwOut = error.stdout
    attwFailed = true
  }
  const { analysis } = JSON.parse(attwOut)
  if (!analysis.types) {
    problems.push('attw: the package ships no types')
  } else if (attwFailed) {
    const ignored = new Set(['node10', 'node16-cjs']) // the esm-only profile
    for (const problem of analysis.problems) {
      if (problem.resolutionKind && ignored.has(problem.resolutionKind)) continue
      const entry = problem.entrypoint ? ` "${join(pkg.name, problem.entrypoint)}"` : ''
      const how = problem.resolutionKind ? ` (${problem.resolutionKind})` : ''
      problems.push(`attw: ${problem.kind}${entry}${how}`)
    }
    if (problems.length === 0) problems.push('attw: failed (run `pnpm exec attw --pack <dir> --profile esm-only` for details)')
  }
  return { pkg, files, problems }
}

let results
try {
  results = await Promise.all(
    packages.map((entry) =>
      check(entry).catch((error) => ({ pkg: entry.pkg, files: [], problems: [`check failed: ${error.message}`] })),
    ),
  )
} finally {
  rmSync(out, { recursive: true, force: true })
}

let failed = 0
for (const { pkg, files, problems } of results) {
  const where = relative(root, packages.find((entry) => entry.pkg.name === pkg.name).dir)
  if (problems.length === 0) {
    console.log(`  ok    ${pkg.name}@${pkg.version} (${where}, ${files.length} files)`)
  } else {
    failed++
    console.log(`  FAIL  ${pkg.name}@${pkg.version} (${where})`)
    for (const problem of problems) console.log(`          ${problem}`)
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(1)
if (failed > 0) {
  console.error(`check-packages: ${failed} of ${results.length} packages have problems (${seconds} s)`)
  process.exit(1)
}
console.log(`check-packages: ${results.length} packages pass publint (strict), attw (esm-only) and the contents check (${seconds} s)`)
