// What a run records about itself: date, Node, CPU, machine and every library's version.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { cpus, freemem, platform, release, totalmem, arch } from 'node:os'
import { join } from 'node:path'

export interface RunMeta {
  date: string
  node: string
  cpu: string
  machine: { os: string; arch: string; cores: number; memoryGiB: number; freeMemoryGiB: number }
  versions: Record<string, string>
  quick: boolean
  durationMs?: number
}

const PEERS_AND_BASELINES = ['bentocache', 'cacheable', 'cache-manager', 'keyv', '@keyv/redis', 'ioredis', 'lru-cache', 'tinybench', 'msgpackr', 'lz4-napi', 'opossum', 'better-sqlite3', 'zod']

function readVersion(dirs: readonly string[], name: string): string | undefined {
  for (const dir of dirs) {
    const file = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version
  }
  return undefined
}

export function collectMeta(repoRoot: string, quick: boolean): RunMeta {
  const versions: Record<string, string> = {}
  const packagesDir = join(repoRoot, 'packages')
  const packageDirs = existsSync(packagesDir) ? readdirSync(packagesDir).map((name) => join(packagesDir, name)) : []
  for (const dir of packageDirs) {
    const file = join(dir, 'package.json')
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
    if (pkg.name && pkg.version) versions[pkg.name] = pkg.version
  }
  const searchDirs = [join(repoRoot, 'benchmarks'), ...packageDirs, repoRoot]
  for (const name of PEERS_AND_BASELINES) {
    const version = readVersion(searchDirs, name)
    if (version) versions[name] = version
  }
  const cpuList = cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    machine: {
      os: `${platform()} ${release()}`,
      arch: arch(),
      cores: cpuList.length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    },
    versions,
    quick,
  }
}
