#!/usr/bin/env node
// Fails when a tracked file reads or names a path outside the repository root. A user clones the
// repository alone: anything it needs from beside itself is missing on their machine.
//
// Two rules, over every tracked text file:
//   1. A relative path (`../…`) is resolved against the folder of the file that holds it; it must
//      stay inside the repository.
//   2. The team notes folder that sits beside a working copy is never named (its name is spelt
//      with a character class below, so this file does not name it either).
// Usage: node scripts/check-paths.mjs [root]   (root defaults to the repository of the cwd)
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, relative, resolve, sep } from 'node:path'

const root = resolve(process.argv[2] ?? execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim())
// The lockfile's `link:` paths are relative to each workspace package, not to the lockfile, and
// pnpm itself refuses one that leads nowhere.
const SKIPPED = new Set(['pnpm-lock.yaml'])
const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((file) => file !== '' && !SKIPPED.has(file))

const RELATIVE = /(?<![\w.])((?:\.\.\/)+)([\w@.-]*)/g
const NOTES_FOLDER = /(?<![\w-])[s]hared\/(?:fixtures|seed|hooks|DESIGN\.md|STYLE\.md|TOOLCHAIN\.md)|['"]\.\.['"]\s*,\s*['"][s]hared['"]/g

const problems = []
for (const file of files) {
  let text
  try {
    text = readFileSync(resolve(root, file), 'utf8')
  } catch {
    continue // removed from the work tree but still in the index
  }
  if (text.includes('\0')) continue // binary
  const lines = text.split('\n')
  lines.forEach((line, index) => {
    const where = `${file}:${index + 1}`
    for (const match of line.matchAll(RELATIVE)) {
      const target = resolve(root, dirname(file), match[1], match[2] ?? '')
      const inside = relative(root, target)
      if (inside === '..' || inside.startsWith(`..${sep}`)) {
        problems.push(`${where}: "${match[0]}" resolves to ${target}, outside the repository`)
      }
    }
    for (const match of line.matchAll(NOTES_FOLDER)) {
      problems.push(`${where}: "${match[0]}" names a folder outside the repository`)
    }
  })
}

if (problems.length > 0) {
  console.error(`check-paths: ${problems.length} reference(s) to paths outside the repository root ${root}:`)
  for (const problem of problems) console.error(`  ${problem}`)
  console.error('A clone has nothing beside it: copy what the file needs into the repository and refer to that copy.')
  process.exit(1)
}
console.log(`check-paths: ${files.length} tracked files, no path leaves the repository`)
