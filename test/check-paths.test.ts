import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'

const script = fileURLToPath(new URL('../scripts/check-paths.mjs', import.meta.url))
// Spelt in pieces: this file must pass the check it tests.
const NOTES = ['sh', 'ared'].join('')
// Relative paths are built, not written, for the same reason.
const up = (levels: number) => '../'.repeat(levels)

function repoWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'check-paths-'))
  onTestFinished(() => rmSync(root, { recursive: true, force: true }))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, dirname(path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  execFileSync('git', ['init', '-q'], { cwd: root })
  execFileSync('git', ['add', '.'], { cwd: root })
  return root
}

const check = (root: string) => spawnSync(process.execPath, [script, root], { cwd: root, encoding: 'utf8' })

describe('scripts/check-paths.mjs (run by .ci/run)', () => {
  it('passes relative paths that stay inside the repository, resolved against their own file', () => {
    const root = repoWith({
      'packages/a/test/x.test.ts': `readFileSync(new URL('${up(2)}b/fixtures/y.json', import.meta.url))\n`,
      'packages/a/tsconfig.json': `{ "extends": "${up(2)}tsconfig.base.json" }\n`,
      'README.md': 'See [the fixtures](packages/b/fixtures/README.md).\n',
    })
    const result = check(root)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })

  it('refuses a relative path that leaves the repository, naming the file, line and target', () => {
    const root = repoWith({
      'ok.ts': 'const a = 1\n',
      'packages/a/test/x.test.ts': `const a = 1\nreadFileSync(new URL('${up(4)}${NOTES}/fixtures/y.json', import.meta.url))\n`,
    })
    const result = check(root)
    expect(result.status).toBe(1)
    expect(result.stderr).toContain(`packages/a/test/x.test.ts:2: "${up(4)}${NOTES}`)
    expect(result.stderr).toContain('outside the repository')
  })

  it('refuses a path one level up from the root, even in prose', () => {
    const root = repoWith({ 'docs/a.md': `The objects live in ${up(2)}${NOTES}/fixtures next to the clone.\n` })
    const result = check(root)
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('docs/a.md:1')
  })

  it('refuses naming the notes folder beside a working copy without a relative path', () => {
    const root = repoWith({
      'src/model.ts': `// Shapes follow the objects in \`${NOTES}/fixtures\`.\n`,
      'src/main.ts': `const dir = resolve(ROOT, '..', '${NOTES}', 'fixtures')\n`,
    })
    const result = check(root)
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('src/model.ts:1')
    expect(result.stderr).toContain('src/main.ts:1')
  })

  it('finds nothing in this repository', () => {
    const result = spawnSync(process.execPath, [script], { encoding: 'utf8' })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })
})
